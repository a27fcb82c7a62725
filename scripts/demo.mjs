// `npm run demo [-- --json]`: set-up (dependencies, Docker engine), build what changed, then run
// the example: the real Claude Code CLI in a sealed session, through the gateway, against a
// scripted model. With --json, everything but the one JSON document goes to stderr.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { installDependencies, run, withEngine } from "./run.mjs";

const args = process.argv.slice(2);
const quiet = args.includes("--json") ? { stdio: ["inherit", process.stderr, "inherit"] } : {};

/** The newest modification time under `path` (a file or a tree), test files left out. */
function newest(path) {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return /\.test\.ts$/.test(path) ? 0 : stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newest(join(path, name))));
}

/**
 * The workspaces whose build output is older than their inputs (sources, manifest, build and
 * TypeScript config), in the root manifest's order: an unchanged package is not built again, so
 * its JavaScript and its type declarations are not emitted again either.
 */
function stalePackages() {
  const root = JSON.parse(readFileSync("package.json", "utf8"));
  const shared = Math.max(newest("tsconfig.json"), newest("tsup.base.ts"), newest("package-lock.json"));
  return root.workspaces.filter((dir) => {
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    if (!manifest.scripts?.build) return false;
    const outputs = ["dist/index.js", "dist/index.d.ts"].map((file) => statSync(join(dir, file), { throwIfNoEntry: false }));
    if (outputs.some((output) => !output)) return true;
    const built = Math.min(...outputs.map((output) => output.mtimeMs));
    const inputs = Math.max(shared, ...["src", "package.json", "tsup.config.ts", "tsconfig.json"].map((file) => newest(join(dir, file))));
    return inputs > built;
  });
}

await withEngine(async () => {
  installDependencies(quiet);
  const stale = stalePackages();
  if (stale.length > 0) run("npm", ["run", "build", ...stale.flatMap((dir) => ["-w", dir])], quiet);
  else console.error("\n[bulkhead] every package is built and unchanged: not building");
  // The example runs in this process, through tsx's loader: tsx's command line would start a
  // second Node (and npx a third) before the demo's first line.
  const { register } = await import("tsx/esm/api");
  const unregister = register({ tsconfig: "tsconfig.check.json" });
  console.error("\n[bulkhead] running examples/rate-limit/index.ts (TypeScript, through tsx's loader, in this process)");
  try {
    await import(new URL("../examples/rate-limit/index.ts", import.meta.url).href);
  } finally {
    await unregister();
  }
});

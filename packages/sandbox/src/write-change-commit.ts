import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChangedPath } from "@bulkhead/core";
import { git } from "./git.js";

/**
 * A digest of what a change set holds for one repo (each path's kind, mode and blob id), recorded
 * in the commits made from it, so the same change is recognized and written once.
 */
export function changeDigest(paths: readonly ChangedPath[]): string {
  const hash = createHash("sha256");
  for (const change of paths) hash.update(`${change.kind} ${change.entry?.mode ?? "-"} ${change.entry?.oid ?? "-"} ${change.path}\0`);
  return hash.digest("hex");
}

/** A path as fast-import reads it: C-style quoted, so newlines, quotes and any UTF-8 survive. */
function quotePath(path: string): string {
  let quoted = '"';
  for (const char of path) {
    const code = char.codePointAt(0)!;
    if (char === "\\") quoted += "\\\\";
    else if (char === '"') quoted += '\\"';
    else if (char === "\n") quoted += "\\n";
    else if (code < 0x20 || code === 0x7f) quoted += `\\${code.toString(8).padStart(3, "0")}`;
    // Anything else, unicode included, goes as its UTF-8 bytes, which fast-import keeps as they are.
    else quoted += char;
  }
  return `${quoted}"`;
}

/** What {@link writeChangeCommit} writes. */
export interface WriteChangeCommitOptions {
  /** The trusted repository the commit is written into (the user's source repo). */
  readonly source: string;
  /** The commit the change applies to, present in `source`. */
  readonly baseSha: string;
  /** The changed paths (one repo's part of a change set); their bytes become the blobs. */
  readonly paths: readonly ChangedPath[];
  readonly message: string;
  readonly author: { readonly name: string; readonly email: string };
  /** The ref to point at the new commit. */
  readonly ref: string;
  /** The ref's value it must still have (compare-and-swap); `undefined` means it must not exist. */
  readonly expected: string | undefined;
  /** @default now, in seconds */
  readonly timestamp?: number;
}

/**
 * Writes one commit into the trusted source repository, built from the base tree and a change
 * set's bytes (no working tree, no index, nothing of the workspace read again), and moves `ref`
 * to it with a compare-and-swap. `git fast-import` writes the objects as one pack, atomically;
 * the ref moves only after it is complete, so a process killed on the way leaves at most
 * unreachable objects, never a ref to a half-written commit.
 */
export async function writeChangeCommit(options: WriteChangeCommitOptions): Promise<string> {
  const { source, baseSha, paths, message, author, ref, expected, timestamp = Math.floor(Date.now() / 1000) } = options;
  const scratch = mkdtempSync(join(tmpdir(), "bulkhead-import-"));
  const marks = join(scratch, "marks");
  // A ref fast-import uses while it builds the commit, reset at the end so it is never written.
  const building = `refs/bulkhead/building/${randomBytes(8).toString("hex")}`;
  try {
    const chunks: Buffer[] = [];
    const text = (value: string) => chunks.push(Buffer.from(value, "utf8"));
    const data = (bytes: Uint8Array) => {
      text(`data ${bytes.length}\n`);
      chunks.push(Buffer.from(bytes));
      text("\n");
    };
    const who = `${author.name.replace(/[<>\n]/g, "")} <${author.email.replace(/[<>\n]/g, "")}> ${timestamp} +0000`;
    text(`commit ${building}\nmark :1\nauthor ${who}\ncommitter ${who}\n`);
    data(Buffer.from(message, "utf8"));
    text(`from ${baseSha}\n`);
    for (const change of paths) {
      if (!change.entry) {
        text(`D ${quotePath(change.path)}\n`);
        continue;
      }
      text(`M ${change.entry.mode} inline ${quotePath(change.path)}\n`);
      data(change.entry.type === "file" ? change.entry.bytes : Buffer.from(change.entry.target, "utf8"));
    }
    text(`\nreset ${building}\n\n`);
    await new Promise<void>((resolve, reject) => {
      const child = spawn("git", ["-C", source, "fast-import", "--quiet", "--done", `--export-marks=${marks}`], {
        stdio: ["pipe", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
      child.on("error", reject);
      child.on("close", (code) =>
        code === 0 ? resolve() : reject(new Error(`git fast-import in ${source}: ${stderr.trim() || `exit ${code}`}`)),
      );
      child.stdin.on("error", () => undefined);
      text("done\n");
      child.stdin.end(Buffer.concat(chunks));
    });
    const commit = /^:1 ([0-9a-f]{40})$/m.exec(readFileSync(marks, "utf8"))?.[1];
    if (!commit) throw new Error(`git fast-import in ${source} reported no commit`);
    await git(source, ["update-ref", "-m", "bulkhead: change set", ref, commit, expected ?? "0".repeat(40)]);
    return commit;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

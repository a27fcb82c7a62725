// Fixtures of the shared-remote tests: a bare remote with clones, a git that kills its lead
// around a push, and a landing host run as its own process.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ChangedPath } from "@bulkhead/core";
import { git, initRepo, type TempDir } from "@bulkhead/test-utils";

const hostScript = fileURLToPath(new URL("./landing-host.ts", import.meta.url));

/** A submission's change adding one file. */
export function fileChange(path: string, text: string): ChangedPath {
  const bytes = Buffer.from(text);
  const oid = createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");
  return { path, kind: "added", entry: { type: "file", mode: "100644", bytes, oid } };
}

/** The remote's first-parent history, oldest first: sha, parents and Bulkhead-Issue trailer. */
export function remoteHistory(remote: string): { sha: string; parents: string[]; issue: string | undefined }[] {
  return git(remote, ["log", "--reverse", "--format=%H %P%x00%(trailers:key=Bulkhead-Issue,valueonly)%x01", "main"])
    .split("\x01")
    .map((record) => record.trim())
    .filter(Boolean)
    .map((record) => {
      const [ids, issue] = record.split("\0") as [string, string];
      const [sha, ...parents] = ids.trim().split(" ").filter(Boolean);
      return { sha: sha!, parents, issue: issue.trim() || undefined };
    });
}

/** A bare remote with one first commit, and `count` bare clones of it (one per host). */
export function setUpRemote(dir: TempDir, count: number): { remote: string; clones: string[] } {
  const seed = join(dir.path, "seed");
  initRepo(seed, { "README.md": "# shared\n", "shared.txt": "v1\n" });
  const remote = join(dir.path, "remote.git");
  git(dir.path, ["clone", "--quiet", "--bare", seed, remote]);
  const clones = Array.from({ length: count }, (_, host) => {
    const clone = join(dir.path, `host-${host}`, "clone.git");
    git(dir.path, ["clone", "--quiet", "--bare", remote, clone]);
    return clone;
  });
  return { remote, clones };
}

/**
 * A `git` earlier on PATH that SIGKILLs its parent (the lead) around the push that finds the
 * marker file: before it (the commit is journaled, nothing sent) or after it (the remote has it,
 * the lead never heard back). Real git does the rest.
 */
export function killingGit(dir: TempDir): string {
  const bin = join(dir.path, "bin");
  dir.write({
    "bin/git": `#!/bin/sh
case " $* " in
  *" push "*)
    if [ -n "$KILL_MARKER" ] && [ -e "$KILL_MARKER" ] && [ "$KILL_WHEN" = before ]; then rm -f "$KILL_MARKER"; kill -9 $PPID; exit 1; fi
    /usr/bin/git "$@"; status=$?
    if [ -n "$KILL_MARKER" ] && [ -e "$KILL_MARKER" ] && [ "$KILL_WHEN" = after ]; then rm -f "$KILL_MARKER"; kill -9 $PPID; fi
    exit $status;;
esac
exec /usr/bin/git "$@"
`,
  });
  chmodSync(join(bin, "git"), 0o755);
  return bin;
}

/** Runs one landing host to its end (or its death); resolves with its exit code and output lines. */
export function runHost(
  args: string[],
  env: Record<string, string> = {},
): { child: ReturnType<typeof spawn>; done: Promise<{ code: number | null; signal: string | null; lines: string[] }> } {
  const child = spawn(process.execPath, ["--import", "tsx", hostScript, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (err += chunk.toString()));
  const done = new Promise<{ code: number | null; signal: string | null; lines: string[] }>((resolve) =>
    child.on("exit", (code, signal) => {
      if (code !== 0 && signal === null) console.error(err);
      resolve({ code, signal, lines: out.split("\n").filter(Boolean) });
    }),
  );
  return { child, done };
}

import { execFile } from "node:child_process";
import { lstatSync } from "node:fs";
import { join } from "node:path";
import { InvalidArgumentError } from "@bulkhead/core";

/**
 * Runs the git CLI in a TRUSTED repository (the user's own source repository, never an agent's
 * clone: its configuration would run) and returns stdout. Belt and braces for the user's own
 * repo: no hooks, no fsmonitor, no pager, no system or global config, no optional locks.
 */
export function trustedGit(cwd: string, args: readonly string[], { allowFailure = false } = {}): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    execFile(
      "git",
      ["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "core.pager=cat", "--no-pager", ...args],
      {
        cwd,
        maxBuffer: 256 * 1024 * 1024,
        encoding: "utf8",
        env: {
          ...process.env,
          GIT_CONFIG_NOSYSTEM: "1",
          GIT_CONFIG_GLOBAL: "/dev/null",
          GIT_OPTIONAL_LOCKS: "0",
          GIT_TERMINAL_PROMPT: "0",
        },
      },
      (error, stdout, stderr) => {
        if (!error) return resolve(stdout);
        if (allowFailure) return resolve(undefined);
        reject(
          new InvalidArgumentError("sourceRepos", `git ${args.join(" ")} failed in ${cwd}: ${stderr.trim() || error.message}`, {
            cause: error,
          }),
        );
      },
    );
  });
}

export type Change = "added" | "modified" | "deleted";

/**
 * Files changed since `base` in a TRUSTED repository, in commits and in the working tree
 * (untracked files included). The change compares the file at `base` with the file on disk now:
 * deleted in a commit and written again is `modified`; added in a commit and removed again is no
 * change at all. For a session's work, use its change set instead: this runs git.
 */
export async function trustedChangesSince(
  dir: string,
  base: string,
): Promise<{ path: string; change: Change; state: "committed" | "uncommitted" }[]> {
  const committed = (await trustedGit(dir, ["diff", "--name-status", "--no-renames", "-z", `${base}..HEAD`]))!;
  // Per path: did it exist at base, and is it touched in the working tree?
  const paths = new Map<string, { atBase: boolean; uncommitted: boolean }>();
  const fields = committed.split("\0").filter(Boolean);
  for (let index = 0; index + 1 < fields.length; index += 2) {
    paths.set(fields[index + 1]!, { atBase: !fields[index]!.startsWith("A"), uncommitted: false });
  }
  const status = (await trustedGit(dir, ["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"]))!;
  for (const entry of status.split("\0").filter(Boolean)) {
    const code = entry.slice(0, 2);
    const path = entry.slice(3);
    const known = paths.get(path);
    // Not changed in a commit: it was at base exactly when it is at HEAD.
    if (known) known.uncommitted = true;
    else paths.set(path, { atBase: code !== "??" && !code.includes("A"), uncommitted: true });
  }
  const changes: { path: string; change: Change; state: "committed" | "uncommitted" }[] = [];
  for (const [path, { atBase, uncommitted }] of paths) {
    const now = lstatSync(join(dir, path), { throwIfNoEntry: false }) !== undefined;
    if (!atBase && !now) continue;
    changes.push({ path, change: !atBase ? "added" : now ? "modified" : "deleted", state: uncommitted ? "uncommitted" : "committed" });
  }
  return changes.sort((left, right) => (left.path < right.path ? -1 : left.path > right.path ? 1 : 0));
}

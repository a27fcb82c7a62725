import { execFile } from "node:child_process";
import { InvalidArgumentError } from "@bulkhead/core";

/**
 * Runs the git CLI and returns stdout; a failure names the repo and git's own message. The repos
 * are the ones the caller named, so git's ownership check is waived for them: a session's
 * workspace belongs to the container's user.
 */
export function git(cwd: string, args: readonly string[], { allowFailure = false } = {}): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    execFile(
      "git",
      ["-c", "safe.directory=*", ...args],
      { cwd, maxBuffer: 256 * 1024 * 1024, encoding: "utf8" },
      (error, stdout, stderr) => {
        if (!error) return resolve(stdout);
        if (allowFailure) return resolve(undefined);
        reject(
          new InvalidArgumentError("repos", `git ${args.join(" ")} failed in ${cwd}: ${stderr.trim() || error.message}`, { cause: error }),
        );
      },
    );
  });
}

export type Change = "added" | "modified" | "deleted";

/** Files changed in commits since `base`, then in the working tree (untracked files included). */
export async function changesSince(
  dir: string,
  base: string,
): Promise<{ path: string; change: Change; state: "committed" | "uncommitted" }[]> {
  const committed = (await git(dir, ["diff", "--name-status", "--no-renames", "-z", `${base}..HEAD`]))!;
  const changes: { path: string; change: Change; state: "committed" | "uncommitted" }[] = [];
  const fields = committed.split("\0").filter(Boolean);
  for (let index = 0; index + 1 < fields.length; index += 2) {
    changes.push({ path: fields[index + 1]!, change: toChange(fields[index]!), state: "committed" });
  }
  const status = (await git(dir, ["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"]))!;
  for (const entry of status.split("\0").filter(Boolean)) {
    const code = entry.slice(0, 2);
    const path = entry.slice(3);
    const change: Change = code === "??" || code.includes("A") ? "added" : code.includes("D") ? "deleted" : "modified";
    const existing = changes.find((candidate) => candidate.path === path);
    if (!existing) changes.push({ path, change, state: "uncommitted" });
    else if (existing.change === "added" && change === "deleted") changes.splice(changes.indexOf(existing), 1);
    else {
      // Committed, then changed again in the working tree: the tree's state is what counts.
      existing.state = "uncommitted";
      if (change === "deleted") existing.change = "deleted";
    }
  }
  return changes.sort((left, right) => (left.path < right.path ? -1 : left.path > right.path ? 1 : 0));
}

function toChange(code: string): Change {
  if (code.startsWith("A")) return "added";
  if (code.startsWith("D")) return "deleted";
  return "modified";
}

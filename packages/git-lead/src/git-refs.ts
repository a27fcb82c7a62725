import { appendFileSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { withGitLock } from "./file-lock.js";
import { GitConflictError } from "./git-lead-errors.js";

/** Now, as git writes it in commits and reflogs: seconds since the epoch and the UTC offset. */
export function gitTimestamp(date = new Date()): string {
  const offset = -date.getTimezoneOffset();
  const zone = `${offset >= 0 ? "+" : "-"}${String(Math.floor(Math.abs(offset) / 60)).padStart(2, "0")}${String(Math.abs(offset) % 60).padStart(2, "0")}`;
  return `${Math.floor(date.getTime() / 1000)} ${zone}`;
}

/** The commit a branch points at (loose ref, then packed-refs), or undefined for an unborn branch. */
export async function readBranch(gitdir: string, branch: string): Promise<string | undefined> {
  const read = (path: string) => {
    try {
      return readFileSync(path, "utf8");
    } catch {
      return undefined;
    }
  };
  const loose = read(join(gitdir, "refs", "heads", branch));
  if (loose !== undefined) return loose.trim();
  const packed = read(join(gitdir, "packed-refs")) ?? "";
  for (const line of packed.split("\n")) {
    const [oid, name] = line.split(" ");
    if (name === `refs/heads/${branch}` && oid && /^[0-9a-f]{40}$/.test(oid)) return oid;
  }
  return undefined;
}

/**
 * Moves a branch from `expected` to `next` only if it still points at `expected`: git's own
 * ref lock (`refs/heads/<branch>.lock`, O_EXCL) is held while the value is read, compared,
 * written to the lock, flushed and renamed into place. `beforeWrite` runs under the lock (the
 * lead checks its fencing token there). A reflog line is appended like git does.
 */
export async function compareAndSwapBranch(
  gitdir: string,
  branch: string,
  expected: string | undefined,
  next: string,
  { message, committer, beforeWrite }: { message: string; committer: string; beforeWrite?: () => Promise<void> },
): Promise<void> {
  const refPath = join(gitdir, "refs", "heads", branch);
  mkdirSync(dirname(refPath), { recursive: true });
  await withGitLock(refPath, async (lockPath, consumed) => {
    const current = await readBranch(gitdir, branch);
    if (current !== expected)
      throw new GitConflictError(
        `branch ${branch} moved from ${expected ?? "(unborn)"} to ${current ?? "(unborn)"} while committing: the lead retries on the new tip`,
        { branch, expected, current },
      );
    await beforeWrite?.();
    const descriptor = openSync(lockPath, "w");
    writeSync(descriptor, `${next}\n`);
    fsyncSync(descriptor);
    closeSync(descriptor);
    renameSync(lockPath, refPath);
    consumed();
    const log = join(gitdir, "logs", "refs", "heads", branch);
    mkdirSync(dirname(log), { recursive: true });
    appendFileSync(log, `${expected ?? "0".repeat(40)} ${next} ${committer} ${gitTimestamp()}\t${message.split("\n")[0]}\n`);
  });
}

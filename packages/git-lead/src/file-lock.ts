import { createHash, randomBytes } from "node:crypto";
import { closeSync, fstatSync, mkdirSync, openSync, rmSync } from "node:fs";
import { readFile, rename, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isProcessAlive, writeFileAtomicSync } from "@bulkhead/core";
import { GitConflictError } from "./git-lead-errors.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Takes a git-style lock file (`<path>.lock`, created with O_EXCL) so git itself and other
 * processes see it, and runs `work`. `work` may fill the lock and rename it into place, then call
 * `consumed()` so the lock is not removed afterwards (it is no longer ours). Waits up to
 * `timeoutMs` for a lock held by someone else. A lock this library created whose process is gone
 * is broken: its owner file (in the temp directory) names the pid and the lock's inode, so a new
 * lock is never mistaken for the dead one. Locks made by git itself are never broken.
 *
 * This is git's own lock protocol, not core's `tryAcquireFileLock`: the lock file is the new ref
 * or index, written by the caller and renamed into place, so it cannot hold an owner record, and
 * git (which never breaks a lock) must see it under its own name.
 */
export async function withGitLock<TResult>(
  path: string,
  work: (lockPath: string, consumed: () => void) => Promise<TResult>,
  { timeoutMs = 10_000 } = {},
): Promise<TResult> {
  const lockPath = `${path}.lock`;
  // Beside the lock, git would read the owner file as a ref: keep it in the temp directory.
  const owners = join(tmpdir(), "bulkhead-git-locks");
  mkdirSync(owners, { recursive: true });
  const ownerPath = join(owners, `${createHash("sha1").update(lockPath).digest("hex")}.owner`);
  const started = Date.now();
  let delayMs = 1;
  let inode: number;
  for (;;) {
    try {
      const descriptor = openSync(lockPath, "wx");
      inode = fstatSync(descriptor).ino;
      closeSync(descriptor);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      if (await breakIfAbandoned(lockPath, ownerPath)) continue;
      if (Date.now() - started > timeoutMs) {
        throw new GitConflictError(
          `${lockPath} has been held for ${timeoutMs} ms: another git process is using it; retry, or remove it if no git process is running`,
          { lockPath },
        );
      }
      await sleep(delayMs + Math.random() * delayMs);
      delayMs = Math.min(delayMs * 2, 25);
    }
  }
  writeFileAtomicSync(ownerPath, `${process.pid}:${inode}`, { fsync: false });
  let isConsumed = false;
  try {
    return await work(lockPath, () => {
      isConsumed = true;
    });
  } finally {
    if (!isConsumed) rmSync(lockPath, { force: true });
  }
}

async function breakIfAbandoned(lockPath: string, ownerPath: string): Promise<boolean> {
  const [pid, ino] = (await readFile(ownerPath, "utf8").catch(() => "")).split(":").map(Number);
  if (!(pid! > 0)) return false;
  const current = await stat(lockPath).catch(() => undefined);
  if (!current || current.ino !== ino) return false;
  if (isProcessAlive(pid!)) return false;
  const aside = `${lockPath}.abandoned.${randomBytes(4).toString("hex")}`;
  if (
    await rename(lockPath, aside).then(
      () => true,
      () => false,
    )
  ) {
    const moved = await stat(aside).catch(() => undefined);
    await rm(aside, { force: true });
    // Renamed a lock that was not the dead one (a race): its owner will notice nothing, so say so.
    if (moved && moved.ino !== ino) return false;
  }
  return true;
}

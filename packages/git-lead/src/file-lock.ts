import { createHash, randomBytes } from "node:crypto";
import { closeSync, fstatSync, mkdirSync, openSync, rmSync } from "node:fs";
import { readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { isProcessAlive, sleep, writeFileAtomicSync } from "@bulkhead/core";
import { GitConflictError } from "./git-lead-errors.js";

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
  // Announced before the lock is made, so a lead killed between making it and naming its inode
  // still leaves a lock that can be broken (each later lead timed out on it otherwise).
  const pendingPath = `${ownerPath}.pending.${process.pid}`;
  for (;;) {
    try {
      writeFileAtomicSync(pendingPath, String(Date.now()), { fsync: false });
      const descriptor = openSync(lockPath, "wx");
      inode = fstatSync(descriptor).ino;
      closeSync(descriptor);
      break;
    } catch (error) {
      rmSync(pendingPath, { force: true });
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
  rmSync(pendingPath, { force: true });
  let isConsumed = false;
  try {
    return await work(lockPath, () => {
      isConsumed = true;
    });
  } finally {
    if (!isConsumed) rmSync(lockPath, { force: true });
  }
}

/**
 * The pid of a process that died after announcing a lock and before naming it, when this lock can
 * only be its: announced before the lock was made (git's own locks, made before, are never taken
 * for it), and no live process announced it too (that one may be about to name it).
 */
async function diedPending(ownerPath: string, lock: { ctimeMs: number }): Promise<number | undefined> {
  const directory = dirname(ownerPath);
  const prefix = `${basename(ownerPath)}.pending.`;
  let dead: { pid: number; path: string } | undefined;
  for (const name of await readdir(directory).catch(() => [] as string[])) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length));
    const announcedMs = Number(await readFile(join(directory, name), "utf8").catch(() => "NaN"));
    if (!(pid > 0) || !(announcedMs <= lock.ctimeMs + 1)) continue;
    if (isProcessAlive(pid)) return undefined;
    dead = { pid, path: join(directory, name) };
  }
  if (dead) await rm(dead.path, { force: true });
  return dead?.pid;
}

async function breakIfAbandoned(lockPath: string, ownerPath: string): Promise<boolean> {
  const current = await stat(lockPath).catch(() => undefined);
  if (!current) return false;
  const [pid, recorded] = (await readFile(ownerPath, "utf8").catch(() => "")).split(":").map(Number);
  const ino = current.ino;
  if (pid! > 0 && recorded === ino) {
    if (isProcessAlive(pid!)) return false;
  } else if ((await diedPending(ownerPath, current)) === undefined) return false;
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

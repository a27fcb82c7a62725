import { createHash, randomBytes } from "node:crypto";
import { closeSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { readFile, rename, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GitConflictError } from "./git-lead-errors.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Takes a git-style lock file (`<path>.lock`, created with O_EXCL) so git itself and other
 * processes see it, and runs `work`. `work` may fill the lock and rename it into place, then call
 * `consumed()` so the lock is not removed afterwards (it is no longer ours). Waits up to
 * `timeoutMs` for a lock held by someone else. A lock this library created whose process is gone
 * is broken: its owner file (in the temp directory) names the pid and the lock's inode, so a new
 * lock is never mistaken for the dead one. Locks made by git itself are never broken.
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
  const temporary = `${ownerPath}.${randomBytes(4).toString("hex")}`;
  writeFileSync(temporary, `${process.pid}:${inode}`);
  renameSync(temporary, ownerPath);
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
  try {
    process.kill(pid!, 0);
    return false;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EPERM") return false;
  }
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

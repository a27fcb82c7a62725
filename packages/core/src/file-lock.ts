import { randomBytes } from "node:crypto";
import { closeSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { dirname } from "node:path";
import { throwIfAborted } from "./aborted-error.js";
import { sleep } from "./deadline.js";
import { isProcessAlive } from "./is-process-alive.js";
import { LockTimeoutError } from "./lock-timeout-error.js";

/** What a lock file holds: who holds it and until when. */
export interface FileLockHolder {
  pid: number;
  host: string;
  /** Unique per acquisition: tells this lock from one taken later at the same path. */
  token: string;
  /** When it was taken or last renewed (ms since the epoch). */
  at: number;
  /** When the lease runs out unless renewed (ms since the epoch). */
  expiresAt: number;
}

/** Options of {@link acquireFileLock}, {@link tryAcquireFileLock} and `withFileLock`. */
export interface FileLockOptions {
  /** How long to wait for the lock. `0` tries once. @default 10_000 */
  timeoutMs?: number;
  /** The lease: a lock not renewed for this long is taken over even if its process seems alive. @default 30_000 */
  staleMs?: number;
  abortSignal?: AbortSignal;
}

/** A held lock. */
export interface HeldFileLock {
  readonly path: string;
  readonly token: string;
  /** True while the lock file at `path` is still this one (not broken and taken by another). */
  isHeld(): boolean;
  /** Extends the lease by `staleMs`, in place. Returns false (and writes nothing) when the lock is no longer this one. */
  renew(): boolean;
  /** Removes the lock if it is still this one. Idempotent. */
  release(): void;
}

/** A breaker is held for a few file operations; one older than this belongs to a dead process. */
const BREAKER_STALE_MS = 5_000;
const HOST = hostname();

function readHolder(lockPath: string): { text: string | undefined; ino: number | undefined; mtimeMs: number | undefined } {
  const stats = statSync(lockPath, { throwIfNoEntry: false });
  let text: string | undefined;
  try {
    text = readFileSync(lockPath, "utf8");
  } catch {
    text = undefined;
  }
  return { text, ino: stats?.ino, mtimeMs: stats?.mtimeMs };
}

function parseHolder(text: string | undefined): FileLockHolder | undefined {
  try {
    const holder = JSON.parse(text ?? "") as FileLockHolder;
    return typeof holder?.pid === "number" && typeof holder.expiresAt === "number" ? holder : undefined;
  } catch {
    return undefined;
  }
}

/**
 * How long a lock whose holder cannot be read is taken for one being written: a live holder
 * writes it right after creating the file (and a renewal rewrites it in place), so an unreadable
 * lock older than this was left by a process killed in between.
 */
const UNREADABLE_GRACE_MS = 2_000;

/**
 * Whether a lock found at a path may be taken over: its holder's process is gone (same host), or
 * its lease ran out; a lock that cannot be read only once it is older than a short grace (a
 * holder killed between creating and filling it left it empty; waiting out a whole lease made
 * every `withFileLock` with a shorter timeout fail).
 */
function isStale(found: ReturnType<typeof readHolder>, staleMs: number): boolean {
  const holder = parseHolder(found.text);
  const now = Date.now();
  if (!holder) return now - (found.mtimeMs ?? now) > Math.min(staleMs, UNREADABLE_GRACE_MS);
  if ((holder.host ?? HOST) === HOST && !isProcessAlive(holder.pid)) return true;
  return holder.expiresAt < now;
}

/**
 * Removes a lock judged stale, unless it changed since it was judged. Contenders take turns
 * through a breaker directory (mkdir is atomic), and the lock goes only while it is still the very
 * file that was judged (same inode, same content): a lock another contender has taken meanwhile
 * is never removed. Returns false when another contender is breaking it right now.
 */
export function breakStaleLock(lockPath: string, judged: { text: string | undefined; ino: number | undefined }): boolean {
  const breaker = `${lockPath}.break`;
  try {
    mkdirSync(breaker);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    const age = Date.now() - (statSync(breaker, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
    if (age > BREAKER_STALE_MS) rmSync(breaker, { recursive: true, force: true });
    return false;
  }
  try {
    const now = readHolder(lockPath);
    if (now.ino !== undefined && now.ino === judged.ino && now.text === judged.text) rmSync(lockPath, { recursive: true, force: true });
    return true;
  } finally {
    rmSync(breaker, { recursive: true, force: true });
  }
}

/**
 * Tries once to take a cross-process lock: a file created with O_EXCL holding its holder (pid,
 * host, token, lease). A lock whose process is gone or whose lease ran out is broken (one
 * contender at a time, and only while it is still the lock that was judged) and taken over.
 * Returns undefined when a live holder has it. The one lock primitive of bulkhead: `withFileLock`
 * and the commit lead's fenced lease are built on it.
 *
 * @example
 * const lock = tryAcquireFileLock(".bulkhead/lead.lock", { staleMs: 30_000 });
 * if (lock) try { work(); lock.renew(); } finally { lock.release(); }
 */
export function tryAcquireFileLock(
  lockPath: string,
  { staleMs = 30_000 }: Pick<FileLockOptions, "staleMs"> = {},
): HeldFileLock | undefined {
  mkdirSync(dirname(lockPath), { recursive: true });
  const token = randomBytes(8).toString("hex");
  for (let attempt = 0; attempt < 3; attempt++) {
    let descriptor: number;
    try {
      descriptor = openSync(lockPath, "wx", 0o644);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const judged = readHolder(lockPath);
      if (judged.ino === undefined) continue;
      if (!isStale(judged, staleMs) || !breakStaleLock(lockPath, judged)) return undefined;
      continue;
    }
    let ino: number;
    try {
      ino = fstatSync(descriptor).ino;
      const write = (fd: number) => {
        const at = Date.now();
        const text = Buffer.from(
          JSON.stringify({ pid: process.pid, host: HOST, token, at, expiresAt: at + staleMs } satisfies FileLockHolder),
        );
        ftruncateSync(fd, 0);
        writeSync(fd, text, 0, text.length, 0);
      };
      write(descriptor);
      const isHeld = () => {
        const found = readHolder(lockPath);
        return found.ino === ino && parseHolder(found.text)?.token === token;
      };
      return {
        path: lockPath,
        token,
        isHeld,
        renew() {
          // In place, on this lock's own file (inode and token): a lock taken by another is never overwritten.
          let fd: number;
          try {
            fd = openSync(lockPath, "r+");
          } catch {
            return false;
          }
          try {
            // The inode number alone is not enough: a file system may reuse it for the next lock.
            if (fstatSync(fd).ino !== ino || parseHolder(readFileSync(fd, "utf8"))?.token !== token) return false;
            write(fd);
            return true;
          } finally {
            closeSync(fd);
          }
        },
        release() {
          if (isHeld()) rmSync(lockPath, { force: true });
        },
      };
    } finally {
      closeSync(descriptor);
    }
  }
  return undefined;
}

/**
 * Takes a cross-process lock, waiting up to `timeoutMs` (with jittered backoff) for a live holder;
 * throws {@link LockTimeoutError} (with the holder) after that.
 */
export async function acquireFileLock(
  lockPath: string,
  { timeoutMs = 10_000, staleMs = 30_000, abortSignal }: FileLockOptions = {},
): Promise<HeldFileLock> {
  const started = Date.now();
  let delayMs = 2;
  for (;;) {
    throwIfAborted(abortSignal, "acquireFileLock");
    const lock = tryAcquireFileLock(lockPath, { staleMs });
    if (lock) return lock;
    if (Date.now() - started >= timeoutMs) throw new LockTimeoutError(lockPath, timeoutMs, parseHolder(readHolder(lockPath).text));
    await sleep(delayMs + Math.random() * delayMs, abortSignal, "acquireFileLock");
    delayMs = Math.min(delayMs * 2, 50);
  }
}

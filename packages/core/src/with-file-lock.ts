import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { LockTimeoutError } from "./lock-timeout-error.js";

export interface FileLockOptions {
  /** How long to wait for the lock. @default 10_000 */
  timeoutMs?: number;
  /** A lock older than this is taken over even if its process seems alive. @default 30_000 */
  staleMs?: number;
}

interface Holder {
  pid: number;
  token: string;
  at: number;
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The lock directory as found: its inode and owner, to tell it from a lock taken later. */
async function identify(lockPath: string): Promise<{ ino: number; mtimeMs: number; holder: Holder | undefined } | undefined> {
  const found = await stat(lockPath).catch(() => undefined);
  if (!found) return undefined;
  const holder = await readFile(join(lockPath, "owner.json"), "utf8")
    .then((text) => JSON.parse(text) as Holder)
    .catch(() => undefined);
  return { ino: found.ino, mtimeMs: found.mtimeMs, holder };
}

/** A breaker is held for a few file operations; one older than this belongs to a dead process. */
const BREAKER_STALE_MS = 5_000;

/**
 * Breaks a lock judged stale, one contender at a time (a breaker directory), and only while it
 * is still the lock that was judged: a lock another contender took meanwhile is left alone.
 * Returns false when someone else is breaking it right now.
 */
async function breakStale(lockPath: string, judged: { ino: number; holder: Holder | undefined }, token: string): Promise<boolean> {
  const breaker = `${lockPath}.break`;
  try {
    await mkdir(breaker);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    const age = Date.now() - ((await stat(breaker).catch(() => undefined))?.mtimeMs ?? Date.now());
    if (age > BREAKER_STALE_MS) await rm(breaker, { recursive: true, force: true });
    return false;
  }
  try {
    const now = await identify(lockPath);
    if (now && now.ino === judged.ino && now.holder?.token === judged.holder?.token) {
      const aside = `${lockPath}.stale.${token}`;
      await rename(lockPath, aside);
      await rm(aside, { recursive: true, force: true });
    }
    return true;
  } finally {
    await rm(breaker, { recursive: true, force: true });
  }
}

/**
 * Runs `work` while holding a cross-process lock: a directory created with `mkdir` (atomic on
 * every local file system) holding the owner's pid. A lock whose process is gone, or that is
 * older than `staleMs`, is broken (one contender at a time, and only while it is still the lock
 * that was judged) and taken over.
 */
export async function withFileLock<TResult>(
  lockPath: string,
  work: () => Promise<TResult>,
  { timeoutMs = 10_000, staleMs = 30_000 }: FileLockOptions = {},
): Promise<TResult> {
  await mkdir(dirname(lockPath), { recursive: true });
  const token = randomBytes(8).toString("hex");
  const started = Date.now();
  let delayMs = 2;
  for (;;) {
    try {
      await mkdir(lockPath);
      await writeFile(join(lockPath, "owner.json"), JSON.stringify({ pid: process.pid, token, at: Date.now() } satisfies Holder));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const judged = await identify(lockPath);
    const holder = judged?.holder;
    const age = holder ? Date.now() - holder.at : Date.now() - (judged?.mtimeMs ?? Date.now());
    if (judged && ((holder && !isProcessAlive(holder.pid)) || age > staleMs)) {
      if (await breakStale(lockPath, judged, token)) continue;
    }
    if (Date.now() - started > timeoutMs) throw new LockTimeoutError(lockPath, timeoutMs, holder);
    await sleep(delayMs + Math.random() * delayMs);
    delayMs = Math.min(delayMs * 2, 50);
  }
  try {
    return await work();
  } finally {
    // Only our own lock goes: held past staleMs, it may have been broken and taken by another.
    const current = await identify(lockPath);
    if (current?.holder?.token === token) {
      const aside = `${lockPath}.released.${token}`;
      await rename(lockPath, aside).catch(() => undefined);
      await rm(aside, { recursive: true, force: true });
    }
  }
}

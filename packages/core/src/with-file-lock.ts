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

/**
 * Runs `work` while holding a cross-process lock: a directory created with `mkdir` (atomic on
 * every local file system) holding the owner's pid. A lock whose process is gone, or that is
 * older than `staleMs`, is moved aside and taken over.
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
    const holder = await readFile(join(lockPath, "owner.json"), "utf8")
      .then((text) => JSON.parse(text) as Holder)
      .catch(() => undefined);
    const age = holder ? Date.now() - holder.at : Date.now() - ((await stat(lockPath).catch(() => undefined))?.mtimeMs ?? Date.now());
    if ((holder && !isProcessAlive(holder.pid)) || age > staleMs) {
      // Move the stale lock aside rather than deleting it: only one contender's rename succeeds.
      const aside = `${lockPath}.stale.${token}`;
      if (
        await rename(lockPath, aside).then(
          () => true,
          () => false,
        )
      )
        await rm(aside, { recursive: true, force: true });
      continue;
    }
    if (Date.now() - started > timeoutMs) throw new LockTimeoutError(lockPath, timeoutMs, holder);
    await sleep(delayMs + Math.random() * delayMs);
    delayMs = Math.min(delayMs * 2, 50);
  }
  try {
    return await work();
  } finally {
    await rm(lockPath, { recursive: true, force: true });
  }
}

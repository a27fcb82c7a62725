import { acquireFileLock, type FileLockOptions } from "./file-lock.js";

export type { FileLockOptions } from "./file-lock.js";

/**
 * Runs `work` while holding a cross-process lock ({@link acquireFileLock}): a lock whose process
 * is gone, or whose lease (`staleMs`) ran out, is taken over; the lease is renewed while `work`
 * runs, so a long `work` keeps it. The lock is released afterwards only if it is still this one.
 *
 * @example
 * await withFileLock(".bulkhead/ledger.lock", async () => appendEntry());
 */
export async function withFileLock<TResult>(
  lockPath: string,
  work: () => Promise<TResult>,
  options: FileLockOptions = {},
): Promise<TResult> {
  const staleMs = options.staleMs ?? 30_000;
  const lock = await acquireFileLock(lockPath, options);
  const keepAlive = setInterval(() => lock.renew(), Math.max(10, staleMs / 3));
  keepAlive.unref();
  try {
    return await work();
  } finally {
    clearInterval(keepAlive);
    lock.release();
  }
}

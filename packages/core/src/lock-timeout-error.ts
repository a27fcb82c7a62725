import { BulkheadError, errorMarker } from "./bulkhead-error.js";

/** A cross-process lock stayed held by someone else for longer than the caller would wait. */
export class LockTimeoutError extends BulkheadError<{ lockPath: string; timeoutMs: number; holder: unknown }> {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("LockTimeoutError");

  constructor(lockPath: string, timeoutMs: number, holder: unknown) {
    super(
      "LOCK_TIMEOUT",
      `lock ${lockPath} is still held after ${timeoutMs} ms (holder: ${JSON.stringify(holder)}): retry, or remove the lock if its holder is gone`,
      {
        data: { lockPath, timeoutMs, holder },
      },
    );
    this.name = "LockTimeoutError";
  }
}

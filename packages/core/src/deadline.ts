import { AbortedError } from "./aborted-error.js";

/** The two ways a long operation can be cut short: the caller's signal and its own time limit. */
export interface DeadlineOptions {
  /** The caller's signal; when it fires, the deadline's signal fires with the same reason. */
  abortSignal?: AbortSignal | undefined;
  /**
   * Milliseconds until the deadline's signal fires on its own, with a `TimeoutError` reason.
   * @default undefined (no time limit)
   */
  timeoutMs?: number | undefined;
}

/**
 * One signal for one operation: the caller's `abortSignal` merged with a time limit. Dispose it
 * (`using deadline = createDeadline(...)`, or `dispose()` in a `finally`) when the operation
 * ends: that clears the timer and detaches from the caller's signal, so nothing keeps the
 * process alive or leaks a listener.
 */
export interface Deadline extends Disposable {
  /** Fires on the caller's abort or when the time limit passes, whichever comes first. */
  readonly signal: AbortSignal;
  /** True once the time limit, not the caller, fired the signal. */
  readonly timedOut: boolean;
  /** Throws {@link AbortedError} naming `operation` once the signal has fired. */
  throwIfAborted(operation: string): void;
  /** Clears the timer and the listener; idempotent. */
  dispose(): void;
}

/**
 * Creates a {@link Deadline}. Every long operation in bulkhead takes `abortSignal` (and most a
 * timeout) and merges them here, so an abort always ends the same way: the operation throws
 * {@link AbortedError} with the signal's reason as `cause`. See docs/cancellation.md.
 */
export function createDeadline(options: DeadlineOptions = {}): Deadline {
  const controller = new AbortController();
  const { abortSignal, timeoutMs } = options;
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const onAbort = (): void => controller.abort(abortSignal?.reason);
  if (abortSignal?.aborted) controller.abort(abortSignal.reason);
  else abortSignal?.addEventListener("abort", onAbort, { once: true });
  if (timeoutMs !== undefined && !controller.signal.aborted) {
    timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new DOMException(`timed out after ${timeoutMs} ms`, "TimeoutError"));
    }, timeoutMs);
    // A deadline never holds the process open by itself; the work it bounds does.
    timer.unref();
  }
  const dispose = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    abortSignal?.removeEventListener("abort", onAbort);
  };
  return {
    signal: controller.signal,
    get timedOut() {
      return timedOut;
    },
    throwIfAborted(operation: string) {
      if (controller.signal.aborted) throw new AbortedError(operation, controller.signal.reason);
    },
    dispose,
    [Symbol.dispose]: dispose,
  };
}

/**
 * Waits `ms` milliseconds, or throws {@link AbortedError} as soon as `abortSignal` fires; the timer
 * is cleared either way. For polling loops that must stay cancelable.
 */
export function sleep(ms: number, abortSignal?: AbortSignal, operation = "sleep"): Promise<void> {
  if (abortSignal?.aborted) return Promise.reject(new AbortedError(operation, abortSignal.reason));
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new AbortedError(operation, abortSignal?.reason));
    };
    const timer = setTimeout(() => {
      abortSignal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    abortSignal?.addEventListener("abort", onAbort, { once: true });
  });
}

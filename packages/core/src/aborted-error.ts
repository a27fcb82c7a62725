import { BulkheadError, errorMarker } from "./bulkhead-error.js";

/** The operation was canceled through its `abortSignal`; `cause` holds the signal's reason. */
export class AbortedError extends BulkheadError {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("AbortedError");

  constructor(operation: string, reason?: unknown) {
    super("ABORTED", `${operation} was canceled`, { cause: reason });
    this.name = "AbortedError";
  }
}

/** Throws {@link AbortedError} when the signal has fired; call it before each unit of work. */
export function throwIfAborted(signal: AbortSignal | undefined, operation: string): void {
  if (signal?.aborted) throw new AbortedError(operation, signal.reason);
}

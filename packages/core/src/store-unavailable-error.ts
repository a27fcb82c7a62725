import { BulkheadError, errorMarker } from "./bulkhead-error.js";

/**
 * A shared store could not be reached (the database is down, the network broke, the pool timed
 * out). Stores fail closed: the call that throws this granted nothing, so a reservation that
 * failed this way never spends. Retry when the store is back; nothing needs restarting.
 */
export class StoreUnavailableError extends BulkheadError<{ store: string; operation: string }> {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("StoreUnavailableError");

  constructor(store: string, operation: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      "STORE_UNAVAILABLE",
      `the ${store} store could not ${operation} (${reason}): nothing was granted; retry when the database is reachable again`,
      { cause, data: { store, operation } },
    );
    this.name = "StoreUnavailableError";
  }
}

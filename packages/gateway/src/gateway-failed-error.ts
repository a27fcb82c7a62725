import { BulkheadError, type BulkheadErrorOptions, errorMarker } from "@bulkhead/core";

/** The gateway could not start (an address or socket path in use) or was used after `close()`. */
export class GatewayFailedError extends BulkheadError {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("GatewayFailedError");

  constructor(message: string, options: BulkheadErrorOptions = {}) {
    super("GATEWAY_FAILED", message, options);
    this.name = "GatewayFailedError";
  }
}

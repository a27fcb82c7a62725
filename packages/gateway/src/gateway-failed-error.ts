import { BulkheadError, type BulkheadErrorOptions } from "@bulkhead/core";

/** The gateway could not start (an address or socket path in use) or was used after `close()`. */
export class GatewayFailedError extends BulkheadError {
  constructor(message: string, options: BulkheadErrorOptions = {}) {
    super("GATEWAY_FAILED", message, options);
    this.name = "GatewayFailedError";
  }
}

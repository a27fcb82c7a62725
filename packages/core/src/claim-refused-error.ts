import { BulkheadError, errorMarker } from "./bulkhead-error.js";

/** A work-hook claim was refused: held by someone else, expired, taken over, or not ready. */
export class ClaimRefusedError extends BulkheadError {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("ClaimRefusedError");

  constructor(message: string, data: Record<string, unknown> = {}) {
    super("CLAIM_REFUSED", message, { data });
    this.name = "ClaimRefusedError";
  }
}

import { BulkheadError } from "./bulkhead-error.js";

/** A work-hook claim was refused: held by someone else, expired, taken over, or not ready. */
export class ClaimRefusedError extends BulkheadError {
  constructor(message: string, data: Record<string, unknown> = {}) {
    super("CLAIM_REFUSED", message, { data });
    this.name = "ClaimRefusedError";
  }
}

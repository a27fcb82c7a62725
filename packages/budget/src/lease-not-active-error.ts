import { BulkheadError, errorMarker } from "@bulkhead/core";

/** A lease was already settled or released, or belongs to another budget. */
export class LeaseNotActiveError extends BulkheadError<{ leaseId: string; state: string }> {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("LeaseNotActiveError");

  constructor(leaseId: string, state: string) {
    super("LEASE_NOT_ACTIVE", `lease ${leaseId} is ${state}: settle or release a lease once, on the budget that issued it`, {
      data: { leaseId, state },
    });
    this.name = "LeaseNotActiveError";
  }
}

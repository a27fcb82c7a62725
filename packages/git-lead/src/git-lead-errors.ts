import { BulkheadError, errorMarker } from "@bulkhead/core";

/** Another lead took over; this one's fencing token is stale, so it must not write. */
export class LeadFencedError extends BulkheadError {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("LeadFencedError");

  constructor(token: number, current: number) {
    super("LEAD_FENCED", `this lead's fencing token ${token} is stale (now ${current}): another lead took over; stop and let it work`, {
      data: { token, current },
    });
    this.name = "LeadFencedError";
  }
}

/** A ref or the index moved, or stayed locked, while the lead tried to update it. */
export class GitConflictError extends BulkheadError {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("GitConflictError");

  constructor(message: string, data: Record<string, unknown> = {}) {
    super("GIT_CONFLICT", message, { data });
    this.name = "GitConflictError";
  }
}

/** Tasks cannot be planned: a cycle, an unknown dependency, a duplicate id. */
export class InvalidPlanError extends BulkheadError {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("InvalidPlanError");

  constructor(message: string, data: Record<string, unknown> = {}) {
    super("INVALID_PLAN", message, { data });
    this.name = "InvalidPlanError";
  }
}

// Lives in core, where the work-hook store interface is, so every store throws the same error.
export { ClaimRefusedError } from "@bulkhead/core";

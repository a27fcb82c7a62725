import { BulkheadError } from "@bulkhead/core";

/** Another lead took over; this one's fencing token is stale, so it must not write. */
export class LeadFencedError extends BulkheadError {
  constructor(token: number, current: number) {
    super("LEAD_FENCED", `this lead's fencing token ${token} is stale (now ${current}): another lead took over; stop and let it work`, {
      data: { token, current },
    });
    this.name = "LeadFencedError";
  }
}

/** A ref or the index moved, or stayed locked, while the lead tried to update it. */
export class GitConflictError extends BulkheadError {
  constructor(message: string, data: Record<string, unknown> = {}) {
    super("GIT_CONFLICT", message, { data });
    this.name = "GitConflictError";
  }
}

/** Tasks cannot be planned: a cycle, an unknown dependency, a duplicate id. */
export class InvalidPlanError extends BulkheadError {
  constructor(message: string, data: Record<string, unknown> = {}) {
    super("INVALID_PLAN", message, { data });
    this.name = "InvalidPlanError";
  }
}

/** A work-hook claim was refused: held by someone else, expired, or not ready. */
export class ClaimRefusedError extends BulkheadError {
  constructor(message: string, data: Record<string, unknown> = {}) {
    super("CLAIM_REFUSED", message, { data });
    this.name = "ClaimRefusedError";
  }
}

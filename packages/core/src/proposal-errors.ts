import { BulkheadError, errorMarker } from "./bulkhead-error.js";
import type { Proposal } from "./proposal.js";

/** No proposal with this id exists in the store. */
export class ProposalNotFoundError extends BulkheadError<{ id: string }> {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("ProposalNotFoundError");

  constructor(id: string) {
    super("PROPOSAL_NOT_FOUND", `no proposal "${id}": list pending proposals with guard.pending()`, { data: { id } });
    this.name = "ProposalNotFoundError";
  }
}

/** The proposal was already approved or rejected; a decision is made once. */
export class ProposalAlreadyDecidedError extends BulkheadError<{
  id: string;
  status: Proposal["status"];
  decidedBy: string | undefined;
  decidedAt: string | undefined;
}> {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("ProposalAlreadyDecidedError");

  constructor(proposal: Proposal) {
    super(
      "PROPOSAL_ALREADY_DECIDED",
      `proposal "${proposal.id}" was already ${proposal.status} by ${proposal.decidedBy ?? "someone"} at ${proposal.decidedAt ?? "an unknown time"}: a decision cannot be changed`,
      {
        data: { id: proposal.id, status: proposal.status, decidedBy: proposal.decidedBy, decidedAt: proposal.decidedAt },
      },
    );
    this.name = "ProposalAlreadyDecidedError";
  }
}

import { z } from "zod";

/** A change held by the {@link MultiRepoGuard} until a person decides on it. */
export const proposalSchema = z.object({
  id: z.string(),
  repo: z.string(),
  file: z.string(),
  diff: z.string(),
  author: z.string().optional(),
  /** Why it was held: another repo than the primary, or a path outside the task's scope. */
  reason: z.enum(["cross-repo", "out-of-scope"]),
  status: z.enum(["pending", "approved", "rejected"]),
  createdAt: z.string(),
  decidedAt: z.string().optional(),
  decidedBy: z.string().optional(),
  rejectionReason: z.string().optional(),
});

export type Proposal = z.output<typeof proposalSchema>;
export type ProposalStatus = Proposal["status"];

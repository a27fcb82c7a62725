import { z } from "zod";

const oid = z.string().regex(/^[0-9a-f]{40}$/, "expected a 40-hex git object id");

/**
 * The held change itself, kept whole so an approval can be applied without the session that made
 * it: a changed path of a change set (see `ChangedPath`), with a file's bytes as base64.
 */
export const proposalChangeSchema = z.object({
  kind: z.enum(["added", "modified", "deleted"]),
  entry: z
    .discriminatedUnion("type", [
      z.object({ type: z.literal("file"), mode: z.enum(["100644", "100755"]), base64: z.string(), oid }),
      z.object({ type: z.literal("link"), mode: z.literal("120000"), target: z.string().min(1).max(4096), oid }),
    ])
    .optional(),
  base: z.object({ mode: z.enum(["100644", "100755", "120000"]), oid }).optional(),
});

/** Where an approved change lands: the trusted source repository and branch, and the issue it belongs to. */
export const proposalTargetSchema = z.object({
  /** The source repository's directory on the host (never an agent's clone). */
  source: z.string().min(1),
  branch: z.string().min(1),
  /** The commit the change was made against; the branch is created there when missing. */
  baseSha: oid,
  issueId: z.string().min(1),
  /** The session that proposed it, when one did. */
  session: z.string().optional(),
});

/** What an approval did: a commit in the target repository, or a follow-up task on a work hook. */
export const proposalLandingSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("commit"), repo: z.string(), branch: z.string(), sha: oid, at: z.string() }),
  z.object({ type: z.literal("follow-up"), hook: z.string(), taskId: z.string(), why: z.string(), at: z.string() }),
]);

/** A change held by the {@link MultiRepoGuard} until a person decides on it. */
export const proposalSchema = z.object({
  id: z.string(),
  repo: z.string(),
  file: z.string(),
  /** A unified diff against the base, for reading. */
  diff: z.string(),
  author: z.string().optional(),
  /** Why it was held: another repo than the primary, or a path outside the task's scope. */
  reason: z.enum(["cross-repo", "out-of-scope"]),
  status: z.enum(["pending", "approved", "rejected"]),
  createdAt: z.string(),
  decidedAt: z.string().optional(),
  decidedBy: z.string().optional(),
  rejectionReason: z.string().optional(),
  /** The full new content, for applying. Absent on proposals made from a diff alone. */
  change: proposalChangeSchema.optional(),
  target: proposalTargetSchema.optional(),
  landed: proposalLandingSchema.optional(),
});

export type Proposal = z.output<typeof proposalSchema>;
export type ProposalStatus = Proposal["status"];
export type ProposalChange = z.output<typeof proposalChangeSchema>;
export type ProposalTarget = z.output<typeof proposalTargetSchema>;
export type ProposalLanding = z.output<typeof proposalLandingSchema>;

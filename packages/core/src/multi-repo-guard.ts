import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { z } from "zod";
import { normalizeRepoPath } from "./repo-path.js";
import { REPO_NAME_PATTERN } from "./task-spec.js";
import type { ChangedPath } from "./change-set.js";
import { toProposalChange } from "./proposal-change.js";
import { ProposalAlreadyDecidedError, ProposalNotFoundError } from "./proposal-errors.js";
import { createFileProposalStore, type ProposalStore } from "./proposal-store.js";
import { proposalLandingSchema, proposalTargetSchema, type Proposal, type ProposalLanding, type ProposalTarget } from "./proposal.js";
import type { ResolvedScope } from "./resolve-scope.js";
import { TypedEmitter } from "./typed-emitter.js";
import { lazySchema } from "./lazy-schema.js";
import { validateOptions } from "./validate-options.js";

/** Events of a {@link MultiRepoGuard}; each carries the proposal as stored. */
export interface GuardEvents {
  "proposal-pending": { proposal: Proposal };
  "proposal-approved": { proposal: Proposal };
  "proposal-rejected": { proposal: Proposal };
}

/** The options of {@link createMultiRepoGuard}. */
export interface MultiRepoGuardOptions {
  /** The repo the task owns: changes there pass. */
  primaryRepo: string;
  /** Other repos the task may change without approval. @default [] */
  allowedWrites?: readonly string[];
  /**
   * When given, a change passes only where `scope.canWrite(repo, file)` is true.
   * @default undefined (every path of an own repo passes)
   */
  scope?: Pick<ResolvedScope, "canWrite">;
  /** Where proposals persist. @default a file store in `.bulkhead/proposals` under the working directory */
  store?: ProposalStore;
}

/** The guard's answer to a proposed change. */
export type ProposeResult =
  /** `approved` names the proposal a person approved for exactly this change, when that is why. */
  | { status: "allowed"; approved?: { id: string; by: string } }
  | { status: "pending"; id: string; reason: Proposal["reason"] }
  /** A person rejected exactly this change before: `rejection` says who and why. It is not held again. */
  | { status: "refused"; id: string; reason: Proposal["reason"]; rejection: { by: string; at: string; reason: string } };

/** The most bytes a proposal keeps of a change's new content (the lead's own per-file limit is larger). */
const MAX_CHANGE_BYTES = 16 * 1024 * 1024;

// Built on first use, not at import.
const repoName = () => z.string().regex(REPO_NAME_PATTERN, "expected a repo name");
const optionsSchema = lazySchema(() =>
  z.object({
    primaryRepo: repoName(),
    allowedWrites: z.array(repoName()).optional(),
    scope: z
      .custom<Pick<ResolvedScope, "canWrite">>(
        (value) => typeof (value as ResolvedScope | undefined)?.canWrite === "function",
        "expected a ResolvedScope",
      )
      .optional(),
    store: z
      .custom<ProposalStore>((value) => typeof (value as ProposalStore | undefined)?.update === "function", "expected a ProposalStore")
      .optional(),
  }),
);
const changeSchema = lazySchema(() =>
  z.object({
    repo: repoName(),
    file: z.string().min(1, "expected a file path"),
    diff: z.string().max(4 * 1024 * 1024, "is over 4 MiB: propose a smaller change"),
    author: z.string().min(1).max(200).optional(),
    change: z
      .custom<ChangedPath>(
        (value) => typeof (value as ChangedPath | undefined)?.path === "string" && typeof (value as ChangedPath).kind === "string",
        "expected a ChangedPath of a change set",
      )
      .refine(
        (value) => value.entry?.type !== "file" || value.entry.bytes.byteLength <= MAX_CHANGE_BYTES,
        `holds over ${MAX_CHANGE_BYTES} bytes: a proposal keeps at most 16 MiB of new content`,
      )
      .optional(),
    target: proposalTargetSchema.optional(),
  }),
);
// Any string: an id that cannot name a proposal is "not found", as for every other unknown id.
const proposalId = () => z.string({ error: "expected a proposal id" });
const decisionSchema = lazySchema(() => z.object({ id: proposalId(), by: z.string().min(1, "say who decides").max(200) }));
const rejectionSchema = lazySchema(() => decisionSchema().extend({ reason: z.string().min(1, "say why").max(2000) }));
const landingSchema = lazySchema(() => z.object({ id: proposalId(), landing: proposalLandingSchema }));

// Set by the class's static block: construction goes through createMultiRepoGuard.
let construct: (options: MultiRepoGuardOptions) => MultiRepoGuard;

function newProposalId(): string {
  return `p-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
}

/**
 * Holds cross-repo changes for a person's approval (seed 000). A change inside the primary repo
 * (and inside the scope, when one is given) or in an allowed repo passes; anything else is
 * stored as a pending proposal until someone approves or rejects it. Proposing the same pending
 * change twice returns the same proposal; proposing a change that was approved (same repo, file
 * and diff) allows it, so the work held for approval goes through when it is submitted again; a
 * change that was rejected is refused with the earlier reason, never held again. Given `change`
 * (the change set's path) and `target` (where it lands), a proposal keeps the whole new content,
 * so an approval can be committed without the session (`bulkhead proposals approve`).
 *
 * Create one with {@link createMultiRepoGuard}.
 */
export class MultiRepoGuard extends TypedEmitter<GuardEvents> {
  static {
    construct = (options) => new MultiRepoGuard(options);
  }

  readonly primaryRepo: string;
  readonly allowedWrites: readonly string[];
  readonly #scope: Pick<ResolvedScope, "canWrite"> | undefined;
  readonly #store: ProposalStore;

  private constructor(options: MultiRepoGuardOptions) {
    super();
    const { primaryRepo, allowedWrites = [], scope, store } = validateOptions(optionsSchema(), options, "options");
    this.primaryRepo = primaryRepo;
    this.allowedWrites = allowedWrites;
    this.#scope = scope;
    this.#store = store ?? createFileProposalStore(join(process.cwd(), ".bulkhead", "proposals"));
  }

  /** Allows the change, or holds it as a pending proposal and returns its id. */
  async propose(change: {
    repo: string;
    file: string;
    diff: string;
    author?: string;
    /** The change set's path: its new content is kept for applying the approval. */
    change?: ChangedPath;
    /** Where an approval lands. */
    target?: ProposalTarget;
  }): Promise<ProposeResult> {
    const { repo, file, diff, author, target } = validateOptions(changeSchema(), change, "change");
    const normalized = normalizeRepoPath(file);
    const path = normalized.ok ? normalized.path : file;
    const ownRepo = repo === this.primaryRepo || this.allowedWrites.includes(repo);
    const inScope = normalized.ok && (!this.#scope || this.#scope.canWrite(repo, path));
    if (ownRepo && inScope) return { status: "allowed" };

    const reason: Proposal["reason"] = ownRepo ? "out-of-scope" : "cross-repo";
    const { proposal, created } = await this.#store.exclusive(async () => {
      const same = (await this.#store.list()).filter((held) => held.repo === repo && held.file === path && held.diff === diff);
      // Approved once, this exact change goes through (the resubmission after a person's yes).
      const approved = same.find((held) => held.status === "approved");
      if (approved) return { proposal: approved, created: false };
      // Rejected once, the same change is refused with the earlier reason: a person said no.
      const rejected = same.find((held) => held.status === "rejected");
      if (rejected) return { proposal: rejected, created: false };
      const pending = same.find((held) => held.status === "pending");
      if (pending) return { proposal: pending, created: false };
      const fresh: Proposal = {
        id: newProposalId(),
        repo,
        file: path,
        diff,
        reason,
        status: "pending",
        createdAt: new Date().toISOString(),
        ...(author === undefined ? {} : { author }),
        ...(change.change ? { change: toProposalChange(change.change) } : {}),
        ...(target ? { target } : {}),
      };
      await this.#store.create(fresh);
      return { proposal: fresh, created: true };
    });
    if (proposal.status === "approved") return { status: "allowed", approved: { id: proposal.id, by: proposal.decidedBy ?? "" } };
    if (proposal.status === "rejected")
      return {
        status: "refused",
        id: proposal.id,
        reason: proposal.reason,
        rejection: { by: proposal.decidedBy ?? "", at: proposal.decidedAt ?? "", reason: proposal.rejectionReason ?? "" },
      };
    if (created) this.emit("proposal-pending", { proposal });
    return { status: "pending", id: proposal.id, reason: proposal.reason };
  }

  /** True while any proposal waits for a decision. */
  async requiresHumanApproval(): Promise<boolean> {
    return (await this.pending()).length > 0;
  }

  /** Proposals waiting for a decision, oldest first. */
  pending(): Promise<Proposal[]> {
    return this.#store.list({ status: "pending" });
  }

  /** Every proposal, decided or not, oldest first. */
  proposals(): Promise<Proposal[]> {
    return this.#store.list();
  }

  /** One proposal by id, or undefined. */
  async get(id: string): Promise<Proposal | undefined> {
    if (typeof id !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) return undefined;
    return this.#store.get(id);
  }

  /**
   * Records what an approval did (its commit, or the follow-up task that will apply it), once:
   * the proposal must be approved and not landed yet.
   */
  async recordLanding(options: { id: string; landing: ProposalLanding }): Promise<Proposal> {
    const { id, landing: parsed } = validateOptions(landingSchema(), options, "options");
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw new ProposalNotFoundError(id);
    return this.#store.update(id, (current) => {
      if (!current) throw new ProposalNotFoundError(id);
      if (current.status !== "approved" || current.landed) throw new ProposalAlreadyDecidedError(current);
      return { ...current, landed: parsed };
    });
  }

  /** Approves a pending proposal: `approve({ id, by })`. Approving twice, or an unknown id, throws. */
  async approve(decision: { id: string; by: string }): Promise<Proposal> {
    const { id, by } = validateOptions(decisionSchema(), decision, "decision");
    const proposal = await this.#decide(id, (current) => ({
      ...current,
      status: "approved",
      decidedBy: by,
      decidedAt: new Date().toISOString(),
    }));
    this.emit("proposal-approved", { proposal });
    return proposal;
  }

  /** Rejects a pending proposal with a reason: `reject({ id, by, reason })`. Deciding twice, or an unknown id, throws. */
  async reject(decision: { id: string; by: string; reason: string }): Promise<Proposal> {
    const { id, by, reason } = validateOptions(rejectionSchema(), decision, "decision");
    const proposal = await this.#decide(id, (current) => ({
      ...current,
      status: "rejected",
      decidedBy: by,
      decidedAt: new Date().toISOString(),
      rejectionReason: reason,
    }));
    this.emit("proposal-rejected", { proposal });
    return proposal;
  }

  #decide(id: string, decide: (current: Proposal) => Proposal): Promise<Proposal> {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) return Promise.reject(new ProposalNotFoundError(id));
    return this.#store.update(id, (current) => {
      if (!current) throw new ProposalNotFoundError(id);
      if (current.status !== "pending") throw new ProposalAlreadyDecidedError(current);
      return decide(current);
    });
  }
}

/**
 * Creates the guard of one task: changes in `primaryRepo` (inside `scope`, when given) or in
 * `allowedWrites` pass; anything else is held as a pending proposal in `store` until a person
 * approves or rejects it. Creating a guard changes nothing on disk.
 *
 * @example
 * const guard = createMultiRepoGuard({ primaryRepo: "backend-api", store: createMemoryProposalStore() });
 * const result = await guard.propose({ repo: "frontend", file: "src/api.ts", diff: "..." });
 * if (result.status === "pending") await guard.approve({ id: result.id, by: "ana" });
 */
export function createMultiRepoGuard(options: MultiRepoGuardOptions): MultiRepoGuard {
  return construct(options);
}

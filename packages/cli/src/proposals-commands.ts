import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Proposal, ProposalLanding } from "@bulkhead/core";
import { ok, single, UsageError, type Command, type Flags, type Outcome } from "./command.js";
import { bulkheadHome } from "./home.js";

/**
 * Where proposals live: `--store`, else `$BULKHEAD_HOME/proposals` (where `bulkhead harvest`
 * keeps what the guard held), else `~/.bulkhead/proposals`.
 */
export function proposalsDir(flags: Flags): string {
  return single(flags, "store") ?? join(bulkheadHome(), "proposals");
}

async function storeOf(flags: Flags) {
  const { createFileProposalStore } = await import("@bulkhead/core");
  return createFileProposalStore(proposalsDir(flags));
}

/** One proposal by id, or wrong usage naming it. */
async function proposalNamed(id: string, flags: Flags): Promise<Proposal> {
  const store = await storeOf(flags);
  const proposal = /^[A-Za-z0-9_-]{1,64}$/.test(id) ? await store.get(id) : undefined;
  if (!proposal) throw new UsageError(`no proposal "${id}" in ${proposalsDir(flags)}: see bulkhead proposals list --status all`);
  return proposal;
}

/** A person's name for a trailer: one line. */
function decider(flags: Flags): string {
  const by = single(flags, "by") ?? "";
  if (!/^[^\n<>]{1,200}$/.test(by)) throw new UsageError(`--by: expected who decides (one line, no < or >), got ${JSON.stringify(by)}`);
  return by;
}

const line = (proposal: Proposal) =>
  `${proposal.id}  ${proposal.status.padEnd(8)}  ${proposal.repo}/${proposal.file}  (${proposal.reason}${proposal.author ? `, from ${proposal.author}` : ""})${
    proposal.landed
      ? `  → ${proposal.landed.type === "commit" ? `${proposal.landed.sha.slice(0, 12)} on ${proposal.landed.branch}` : `follow-up ${proposal.landed.taskId}`}`
      : ""
  }`;

const decision = (proposal: Proposal) =>
  proposal.status === "pending"
    ? "pending"
    : `${proposal.status} by ${proposal.decidedBy} at ${proposal.decidedAt}${proposal.rejectionReason ? `: ${proposal.rejectionReason}` : ""}`;

/** Why the proposal's target repository cannot take the commit here, or undefined when it can. */
function unreachable(proposal: Proposal): string | undefined {
  if (!proposal.change) return "the proposal keeps no content to apply (it was made from a diff alone)";
  if (!proposal.target) return "the proposal names no repository to land in";
  const { source } = proposal.target;
  if (!existsSync(join(source, ".git", "HEAD")) && !existsSync(join(source, "HEAD")))
    return `${source} is not a git repository this host can reach`;
  return undefined;
}

/**
 * Lands an approved proposal: its own commit through the target repository's lead, from the
 * proposal's bytes, with the approval in its trailers; or, where the repository is not reachable,
 * a follow-up task on the work hook. Idempotent: the lead's submission id is the proposal's.
 */
async function land(proposal: Proposal, hookDir: string): Promise<ProposalLanding> {
  const at = new Date().toISOString();
  const why = unreachable(proposal);
  if (why !== undefined) {
    const { createWorkHook } = await import("@bulkhead/git-lead");
    await using hook = createWorkHook({ dir: hookDir });
    const taskId = `apply-${proposal.id}`;
    const known = (await hook.tasks()).some((task) => task.id === taskId);
    if (!known)
      await hook.add([
        {
          id: taskId,
          payload: {
            kind: "apply-approved-proposal",
            proposal: proposal.id,
            repo: proposal.repo,
            file: proposal.file,
            approvedBy: proposal.decidedBy,
            approvedAt: proposal.decidedAt,
            why,
          },
        },
      ]);
    return { type: "follow-up", hook: hookDir, taskId, why, at };
  }
  const { fromProposalChange } = await import("@bulkhead/core");
  const { createCommitLead } = await import("@bulkhead/git-lead");
  const target = proposal.target!;
  // A missing branch is created by the lead's commit itself (at the proposal's base), so a stop
  // before it leaves no branch behind.
  await using lead = await createCommitLead({
    dir: target.source,
    branch: target.branch,
    startAt: target.baseSha,
    repo: proposal.repo,
    author: { name: "bulkhead lead", email: "lead@bulkhead.local" },
  });
  const result = await lead.submit({
    id: `approval-${proposal.id}`,
    issueId: target.issueId,
    worker: "approval",
    changes: [fromProposalChange(proposal.file, proposal.change!)],
    message: `Apply the approved change to ${proposal.file}`,
    trailers: {
      "Bulkhead-Proposal": proposal.id,
      "Approved-By": proposal.decidedBy ?? "",
      "Approved-At": proposal.decidedAt ?? at,
      ...(target.session ? { "Bulkhead-Session": target.session } : {}),
    },
    // Its own commit, also when the issue already has one in this repository.
    fixup: true,
  });
  if (result.status !== "committed")
    throw new UsageError(
      `the lead of ${target.source} did not commit the approved change (${result.reason}): fix that and run bulkhead proposals approve ${proposal.id} again`,
    );
  return { type: "commit", repo: proposal.repo, branch: target.branch, sha: result.sha, at };
}

const landingText = (proposal: Proposal): string =>
  proposal.landed?.type === "commit"
    ? `committed ${proposal.landed.sha} on ${proposal.landed.branch} in ${proposal.target?.source ?? proposal.repo}`
    : proposal.landed?.type === "follow-up"
      ? `${proposal.landed.why}: added task ${proposal.landed.taskId} to the work hook ${proposal.landed.hook}`
      : "not landed";

/** `bulkhead proposals …`: review what the guard held, and approve (which lands it) or reject it. */
export const proposalsCommands: Record<string, Command> = {
  "proposals list": {
    usage: "bulkhead proposals list [--status pending|approved|rejected|all] [--store <dir>]",
    example: "bulkhead proposals list --json",
    async run(_positionals, flags) {
      const status = single(flags, "status") ?? "pending";
      if (!["pending", "approved", "rejected", "all"].includes(status))
        throw new UsageError(`--status: expected pending, approved, rejected or all, got "${status}"`);
      const all = await (await storeOf(flags)).list();
      const proposals = status === "all" ? all : all.filter((proposal) => proposal.status === status);
      return ok(
        proposals.map(({ diff: _diff, change: _change, ...rest }) => rest),
        proposals.length === 0 ? [`no ${status === "all" ? "" : `${status} `}proposals in ${proposalsDir(flags)}`] : proposals.map(line),
      );
    },
  },
  "proposals show": {
    usage: "bulkhead proposals show <id> [--store <dir>]",
    example: "bulkhead proposals show p-m1abc-0123abcd",
    async run([id], flags) {
      const proposal = await proposalNamed(id!, flags);
      const { change: _change, ...data } = proposal;
      return ok(data, [
        `proposal ${proposal.id}: ${proposal.repo}/${proposal.file} (${proposal.reason})`,
        `from: ${proposal.author ?? "unknown"} at ${proposal.createdAt}`,
        `status: ${decision(proposal)}`,
        ...(proposal.target ? [`lands in: ${proposal.target.source} on ${proposal.target.branch} (issue ${proposal.target.issueId})`] : []),
        ...(proposal.landed ? [`landed: ${landingText(proposal)}`] : []),
        "",
        proposal.diff.trimEnd(),
      ]);
    },
  },
  "proposals approve": {
    usage: "bulkhead proposals approve <id> --by <name> [--hook <dir>] [--store <dir>]",
    example: "bulkhead proposals approve p-m1abc-0123abcd --by ana",
    async run([id], flags): Promise<Outcome> {
      const by = decider(flags);
      let proposal = await proposalNamed(id!, flags);
      if (proposal.status === "rejected")
        return {
          code: 2,
          data: { id: proposal.id, status: proposal.status, decidedBy: proposal.decidedBy, rejectionReason: proposal.rejectionReason },
          text: [
            `proposal ${proposal.id} was rejected by ${proposal.decidedBy} at ${proposal.decidedAt} (${proposal.rejectionReason}): a decision is not changed`,
          ],
        };
      const { createFileProposalStore, createMultiRepoGuard } = await import("@bulkhead/core");
      const guard = createMultiRepoGuard({ primaryRepo: proposal.repo, store: createFileProposalStore(proposalsDir(flags)) });
      if (proposal.status === "pending") proposal = await guard.approve({ id: proposal.id, by });
      // Approved before but not landed (the landing failed, or stopped): land it now.
      if (!proposal.landed) {
        const landing = await land(proposal, single(flags, "hook") ?? join(".bulkhead", "hook"));
        proposal = await guard.recordLanding({ id: proposal.id, landing });
      }
      const { diff: _diff, change: _change, ...data } = proposal;
      return ok(data, [`approved ${proposal.id} (${proposal.repo}/${proposal.file}) by ${proposal.decidedBy}: ${landingText(proposal)}`]);
    },
  },
  "proposals reject": {
    usage: "bulkhead proposals reject <id> --by <name> --reason <text> [--store <dir>]",
    example: "bulkhead proposals reject p-m1abc-0123abcd --by ana --reason 'the frontend owns its API client'",
    async run([id], flags): Promise<Outcome> {
      const by = decider(flags);
      const reason = single(flags, "reason") ?? "";
      if (reason.trim() === "") throw new UsageError("--reason: say why, so the same change proposed again is refused with it");
      const proposal = await proposalNamed(id!, flags);
      if (proposal.status !== "pending")
        return {
          code: 2,
          data: { id: proposal.id, status: proposal.status, decidedBy: proposal.decidedBy },
          text: [`proposal ${proposal.id} was already ${decision(proposal)}: a decision is not changed`],
        };
      const { createFileProposalStore, createMultiRepoGuard } = await import("@bulkhead/core");
      const guard = createMultiRepoGuard({ primaryRepo: proposal.repo, store: createFileProposalStore(proposalsDir(flags)) });
      const rejected = await guard.reject({ id: proposal.id, by, reason });
      const { diff: _diff, change: _change, ...data } = rejected;
      return ok(data, [
        `rejected ${rejected.id} (${rejected.repo}/${rejected.file}): the same change proposed again is refused with this reason`,
      ]);
    },
  },
};

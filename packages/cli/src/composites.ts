import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { BudgetExceededError, createBudget, createTokenCounter, createTracker, meterClaudeCodeStream } from "@bulkhead/budget";
import {
  BulkheadError,
  type BulkheadErrorOptions,
  createFileProposalStore,
  InvalidArgumentError,
  loadTaskSpec,
  MultiRepoGuard,
  resolveScope,
  writeFileAtomic,
  type UsageReport,
} from "@bulkhead/core";
import { createCommitLead } from "@bulkhead/git-lead";
import { startAgent } from "@bulkhead/agents";
import type { AgentProvider } from "@bulkhead/core";
import { buildHandover, renderHandover, renderTaskPrompt } from "@bulkhead/handover";
import { buildImage, createSession, getSession, loadProject, type Session } from "@bulkhead/sandbox";

/** Harvest could not finish: the message names the step and what to look at. */
export class HarvestError extends BulkheadError {
  constructor(message: string, options: BulkheadErrorOptions = {}) {
    super("HARVEST_FAILED", message, options);
    this.name = "HarvestError";
  }
}

/** `log`: the summary lines a command prints; `progress`: each long step as it starts. */
export interface Reporter {
  log: (line: string) => void;
  progress?: (line: string) => void;
}

/** What `dispatch` leaves beside the workspace for `harvest`. */
interface DispatchRecord {
  spec: string;
  job: string;
  report: UsageReport;
  stoppedBy: string | null;
}

const recordPath = (session: Session) => join(session.state.workspace, ".bulkhead", "dispatch.json");

/**
 * Resolve the scope → check the context budget → build the image if needed → start a session →
 * inject the agent → meter its stream-json output against the spec's budgets. Refused (exit 2)
 * with a ScopeLimitError or BudgetExceededError when the context does not fit.
 */
export async function dispatch(
  projectPath: string,
  specPath: string,
  {
    log,
    progress = () => undefined,
    agent,
  }: Reporter & {
    /** A provider to run (else the project's agent command), its gateway socket and the session's token. */
    agent?: { provider: AgentProvider; socketPath?: string; token: string };
  },
): Promise<{ session: string; job: string; exitCode: number; report: UsageReport; stoppedBy: string | null; prompt: string }> {
  const project = loadProject(projectPath);
  const spec = await loadTaskSpec(specPath, { knownRepos: project.repos.map((repo) => repo.name) });
  const repos = Object.fromEntries(
    project.repos.filter((repo) => spec.contextScope.repos.some((entry) => entry.name === repo.name)).map((repo) => [repo.name, repo.path]),
  );
  progress(`resolving the scope over ${Object.keys(repos).length} repo(s)`);
  using counter = createTokenCounter({ encoding: "o200k_base" });
  const scope = await resolveScope(spec, { repos, counter });
  scope.assertWithinLimits();
  const budget = createBudget({
    id: spec.id ?? "task",
    limits: Object.fromEntries(Object.entries(spec.budgets).filter(([, value]) => value !== undefined)),
  });
  const check = budget.checkContext(scope);
  if (!check.allowed) {
    const kind = check.reason === "context-read" ? "contextRead" : "sessionTotal";
    throw new BudgetExceededError(budget.id, kind, check.tokens, check.available, spec.budgets[kind] ?? check.available);
  }
  log(`scope: ${scope.totals.files} files, ${scope.totals.tokens} tokens: within budget`);
  // No prompt, no dispatch: the agent gets the task as the spec and its scope say it.
  const prompt = renderTaskPrompt({ spec, scope });
  log(`prompt: ${Buffer.byteLength(prompt)} bytes from the spec and its scope`);
  progress("baking the image (cached when unchanged)");
  const { tag, cached } = await buildImage(project, { onProgress: progress });
  log(`image: ${tag}${cached ? " (cached)" : ""}`);
  progress(`cloning ${project.repos.length} repo(s) and starting the container`);
  const session = await createSession(project, { tag, ...(agent?.socketPath ? { gateway: { socketPath: agent.socketPath } } : {}) });
  log(`session: ${session.id}`);
  // A provider runs its agent pointed at the gateway; a project's own agent command gets the
  // prompt in BULKHEAD_PROMPT.
  const job = agent
    ? (await startAgent(session, { provider: agent.provider, prompt, gateway: { token: agent.token } })).job
    : await session.inject({ env: { BULKHEAD_PROMPT: prompt } });
  progress(`agent running as job ${job.id}`);
  const tracker = createTracker({ taskId: spec.id ?? "task" });
  // Metered while it runs: when the budget runs out, the agent is stopped there and then.
  const metered = await meterClaudeCodeStream(job.logs({ follow: true }), {
    budget,
    tracker,
    repo: spec.ownership.primaryRepo,
    operation: "agent",
    onStop: (reason) => {
      progress(`the ${reason} budget is spent: stopping the agent`);
      void job.kill().catch(() => undefined);
    },
  });
  const { exitCode } = await job.wait();
  const report = tracker.report();
  log(`agent: exit ${exitCode}, ${report.totalTokens} tokens${metered.stoppedBy ? `, stopped by the ${metered.stoppedBy} budget` : ""}`);
  await writeFileAtomic(
    recordPath(session),
    JSON.stringify({ spec: resolve(specPath), job: job.id, report, stoppedBy: metered.stoppedBy } satisfies DispatchRecord),
  );
  return { session: session.id, job: job.id, exitCode, report, stoppedBy: metered.stoppedBy, prompt };
}

/**
 * Fetch → guard → lead commit → handover: changes in the primary repo become one commit for the
 * issue; changes anywhere else are held by the guard; the session branch is fetched back; the
 * handover is written to `out`.
 */
export async function harvest(
  sessionId: string,
  {
    out = "handover.md",
    next = [],
    log,
    progress = () => undefined,
  }: Reporter & { out?: string; /** What the next task depends on, for the handover. */ next?: string[] },
): Promise<{
  /** The primary repo's commit, when the agent changed it. */
  sha: string | undefined;
  /** One commit per repo the agent changed and the guard allowed: the primary, and allowed cross-repo writes. */
  commits: { repo: string; sha: string; files: string[] }[];
  held: { repo: string; file: string; id: string }[];
  handover: string;
}> {
  const session = getSession(sessionId);
  if (!existsSync(recordPath(session)))
    throw new InvalidArgumentError("session", `session ${sessionId} was not started by bulkhead dispatch: nothing to harvest`);
  const record = JSON.parse(readFileSync(recordPath(session), "utf8")) as DispatchRecord;
  const spec = await loadTaskSpec(record.spec);
  const primary = spec.ownership.primaryRepo;
  const guard = new MultiRepoGuard({
    primaryRepo: primary,
    allowedWrites: spec.ownership.allowedCrossRepoWrites,
    store: createFileProposalStore(join(session.home, "proposals")),
  });
  progress("checking every changed file against the guard");
  const held: { repo: string; file: string; id: string }[] = [];
  const allowed: Record<string, string[]> = {};
  // Proposals carry the session, so this handover lists this task's held edits, not others'.
  const author = `agent@${sessionId}`;
  // The clones are the agent's: their files are read without following links, and no git
  // command the clones' config could hook into runs on the host.
  const uncommitted = await session.uncommitted();
  for (const repo of session.state.repos.filter((entry) => entry.mode === "clone")) {
    for (const file of uncommitted[repo.name] ?? []) {
      const found = session.readWorkspaceFile(repo.name, file);
      const diff =
        found.kind === "file"
          ? `+++ ${file}\n${found.content.toString("utf8")}`
          : found.kind === "link"
            ? `+++ ${file} (symbolic link to ${found.target})`
            : `deleted ${file}`;
      const outcome = await guard.propose({ repo: repo.name, file, diff, author });
      if (outcome.status === "pending") held.push({ repo: repo.name, file, id: outcome.id });
      else (allowed[repo.name] ??= []).push(file);
    }
  }
  for (const proposal of held) log(`guard: held ${proposal.repo}/${proposal.file} (${proposal.id})`);
  // One commit per repo through its lead: the primary first, then allowed cross-repo writes.
  const commits: { repo: string; sha: string; files: string[] }[] = [];
  const order = Object.keys(allowed).sort((left, right) => Number(right === primary) - Number(left === primary) || (left < right ? -1 : 1));
  for (const repoName of order) {
    const dir = join(session.state.workspace, repoName);
    progress(`committing ${allowed[repoName]!.length} file(s) in ${repoName} through the lead`);
    const lead = await createCommitLead({ dir, author: { name: "bulkhead lead", email: "lead@bulkhead.local" } });
    const result = await lead.submit({
      issueId: spec.id ?? "task",
      worker: "agent",
      files: allowed[repoName]!,
      message: spec.task,
      usage: { inputTokens: record.report.usage.inputTokens, outputTokens: record.report.usage.outputTokens },
    });
    await lead.close();
    if (result.status !== "committed")
      throw new HarvestError(
        `the lead did not commit the agent's changes in ${repoName} (${result.reason}); see bulkhead lead status ${dir}`,
        {
          data: { session: sessionId, repo: repoName, reason: result.reason },
        },
      );
    commits.push({ repo: repoName, sha: result.sha, files: result.files });
    log(`lead: ${repoName} ${result.sha.slice(0, 12)} with ${result.files.join(", ")}`);
  }
  const sha = commits.find((commit) => commit.repo === primary)?.sha;
  const clone = join(session.state.workspace, primary);
  progress("fetching the session branches back");
  const fetched = await session.fetchCode({ strict: true });
  for (const result of fetched.filter((entry) => entry.status === "fetched")) log(`fetched: ${result.repo} → ${result.ref}`);
  const base = session.state.repos.find((repo) => repo.name === primary)!.baseSha;
  const document = await buildHandover({
    spec,
    repos: { [primary]: clone },
    base: { [primary]: base },
    report: record.report,
    guard: { proposals: async () => (await guard.proposals()).filter((proposal) => proposal.author === author) },
    summary: [`Ran the agent for "${spec.task}"`],
    nextTaskDependencies: next,
    status: held.length > 0 || record.stoppedBy ? "partial" : "complete",
    ...(record.stoppedBy ? { notes: [`The ${record.stoppedBy} budget stopped the agent.`] } : {}),
  });
  await writeFileAtomic(out, renderHandover(document));
  log(`handover: ${out}`);
  return { sha, commits, held, handover: out };
}

/** Harvest, then remove the session. */
export async function finish(
  sessionId: string,
  options: Reporter & { out?: string; next?: string[] },
): Promise<Awaited<ReturnType<typeof harvest>>> {
  const harvested = await harvest(sessionId, options);
  await getSession(sessionId).remove();
  options.log(`removed ${sessionId}`);
  return harvested;
}

import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { BudgetExceededError, createBudget, createTokenCounter, createTracker, meterClaudeCodeStream } from "@bulkhead/budget";
import {
  createFileProposalStore,
  InvalidArgumentError,
  loadTaskSpec,
  MultiRepoGuard,
  resolveScope,
  writeFileAtomic,
  type UsageReport,
} from "@bulkhead/core";
import { startAgent } from "@bulkhead/agents";
import type { AgentProvider } from "@bulkhead/core";
import { renderHandover, renderTaskPrompt } from "@bulkhead/handover";
import { buildImage, createSession, getSession, loadProject, type Session } from "@bulkhead/sandbox";
import { harvest } from "./harvest.js";

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
  // --- continuation (continue-command.ts): the same record on the host, where the agent cannot rewrite it ---
  await writeFileAtomic(
    join(session.home, "sessions", session.id, "dispatch.json"),
    JSON.stringify({ spec: resolve(specPath), job: job.id, report, stoppedBy: metered.stoppedBy, agent: agent?.provider.name ?? null }),
  );
  return { session: session.id, job: job.id, exitCode, report, stoppedBy: metered.stoppedBy, prompt };
}

/**
 * `bulkhead harvest`: the library {@link harvest} over a session `dispatch` started (its spec and
 * token report are read from the dispatch record), with the handover written to `out`.
 */
export async function harvestSession(
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
  commits: { repo: string; branch: string; sha: string; files: string[] }[];
  held: { repo: string; file: string; id: string }[];
  handover: string;
}> {
  const session = getSession(sessionId);
  if (!existsSync(recordPath(session)))
    throw new InvalidArgumentError("session", `session ${sessionId} was not started by bulkhead dispatch: nothing to harvest`);
  const record = JSON.parse(readFileSync(recordPath(session), "utf8")) as DispatchRecord;
  const spec = await loadTaskSpec(record.spec);
  const guard = new MultiRepoGuard({
    primaryRepo: spec.ownership.primaryRepo,
    allowedWrites: spec.ownership.allowedCrossRepoWrites,
    store: createFileProposalStore(join(session.home, "proposals")),
  });
  const result = await harvest({
    session,
    spec,
    guard,
    author: { name: "bulkhead lead", email: "lead@bulkhead.local" },
    report: record.report,
    next,
    ...(record.stoppedBy ? { notes: [`The ${record.stoppedBy} budget stopped the agent.`], status: "partial" as const } : {}),
    onProgress: progress,
  });
  for (const proposal of result.held) log(`guard: held ${proposal.repo}/${proposal.file} (${proposal.id})`);
  for (const commit of result.commits)
    log(`lead: ${commit.repo} ${commit.sha.slice(0, 12)} on ${commit.branch} with ${commit.files.join(", ")}`);
  for (const fetched of result.fetched.filter((entry) => entry.status === "fetched")) log(`fetched: ${fetched.repo} → ${fetched.ref}`);
  await writeFileAtomic(out, renderHandover(result.handover));
  log(`handover: ${out}`);
  return {
    sha: result.commits.find((commit) => commit.repo === spec.ownership.primaryRepo)?.sha,
    commits: result.commits.map(({ repo, branch, sha, files }) => ({ repo, branch, sha, files })),
    held: result.held,
    handover: out,
  };
}

/** Harvest, then remove the session. */
export async function finish(
  sessionId: string,
  options: Reporter & { out?: string; next?: string[] },
): Promise<Awaited<ReturnType<typeof harvestSession>>> {
  const harvested = await harvestSession(sessionId, options);
  await getSession(sessionId).remove();
  options.log(`removed ${sessionId}`);
  return harvested;
}

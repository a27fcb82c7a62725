import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Budget, BudgetExceededError, createBudget, createTokenCounter } from "@bulkhead/budget";
import {
  createFileProposalStore,
  createMultiRepoGuard,
  InvalidArgumentError,
  loadTaskSpec,
  resolveScope,
  type TaskSpec,
  type UsageReport,
  writeFileAtomic,
} from "@bulkhead/core";
import type { AgentProvider } from "@bulkhead/core";
import { createGateway, type Gateway } from "@bulkhead/gateway";
import { renderHandover, renderTaskPrompt } from "@bulkhead/handover";
import { buildImage, createSession, getSession, loadProject, type Project } from "@bulkhead/sandbox";
import { describeDispatchMemory, prepareDispatchMemory, resolveMemoryDir, type DispatchMemoryRecord } from "./dispatch-memory.js";
import { dispatchRecordPath, sessionGatewayDir, type DispatchRecord } from "./dispatch-record.js";
import { socketIdentity } from "./gateway-socket.js";
import { harvest } from "./harvest.js";
import { bulkheadHome } from "./home.js";
import { meterAgentJob } from "./meter-agent-job.js";
import { runGatewayAgent } from "./run-gateway-agent.js";

/** `log`: the summary lines a command prints; `progress`: each long step as it starts. */
export interface Reporter {
  log: (line: string) => void;
  progress?: (line: string) => void;
}

const recordPath = dispatchRecordPath;

/** What {@link dispatch} ran and how it ended. */
export interface DispatchResult {
  session: string;
  job: string;
  exitCode: number;
  report: UsageReport;
  stoppedBy: string | null;
  prompt: string;
  memory: DispatchMemoryRecord;
}

/**
 * Resolve the scope → check the context budget → build the image if needed → start a session →
 * run the agent. With `agent`, a provider runs it in a session sealed to the model gateway: the
 * gateway enforces the spec's budgets on the wire and the usage report is its tracker's, from
 * the upstream's own answers (the agent's stream-json is never read for accounting). Without, the
 * project's agent command runs and its stream-json is metered (the agent's own claim). Refused
 * (exit 2) with a ScopeLimitError or BudgetExceededError when the context does not fit.
 */
export async function dispatch(
  projectPath: string,
  specPath: string,
  {
    log,
    progress = () => undefined,
    agent,
    memoryDir,
  }: Reporter & {
    /**
     * A provider to run (else the project's agent command) and its gateway: a running `Gateway`
     * with a unix socket, or, when none is given, one this call starts at `socketPath` (@default a
     * fresh temporary directory) with the host's credentials and upstreams from the environment,
     * and closes once the agent has ended.
     */
    agent?: { provider: AgentProvider; gateway?: Gateway; socketPath?: string };
    /** The project-memory directory. @default `$BULKHEAD_MEMORY_DIR`, else `memory` */
    memoryDir?: string;
  },
): Promise<DispatchResult> {
  const project = loadProject(projectPath);
  const spec = await loadTaskSpec(specPath, { knownRepos: project.repos.map((repo) => repo.name) });
  const repos = Object.fromEntries(
    project.repos.filter((repo) => spec.contextScope.repos.some((entry) => entry.name === repo.name)).map((repo) => [repo.name, repo.path]),
  );
  progress(`resolving the scope over ${Object.keys(repos).length} repo(s)`);
  using counter = createTokenCounter({ encoding: "o200k_base" });
  // Over a limit, refused as soon as that is certain (the rest listed from its size), not after counting it all.
  const scope = await resolveScope(spec, { repos, counter, stopAtLimit: true });
  scope.assertWithinLimits();
  const budget = createBudget({
    id: spec.id ?? "task",
    limits: Object.fromEntries(Object.entries(spec.budgets).filter(([, value]) => value !== undefined)),
  });
  // --- memory: the entries for this scope, within their share; read as context with the scope ---
  const memory = await prepareDispatchMemory({ ...resolveMemoryDir(memoryDir), spec, scope, counter });
  for (const line of describeDispatchMemory(memory)) log(line);
  const check = budget.checkContext(memory.contextTokens);
  if (!check.allowed) {
    const kind = check.reason === "context-read" ? "contextRead" : "sessionTotal";
    throw new BudgetExceededError({
      budgetId: budget.id,
      kind,
      requested: check.tokens,
      available: check.available,
      limit: spec.budgets[kind] ?? check.available,
    });
  }
  log(`scope: ${scope.totals.files} files, ${scope.totals.tokens} tokens: within budget`);
  // No prompt, no dispatch: the agent gets the task as the spec and its scope say it.
  const prompt = renderTaskPrompt({ spec, scope, memory: memory.section });
  log(`prompt: ${Buffer.byteLength(prompt)} bytes from the spec and its scope`);
  progress("baking the image (cached when unchanged)");
  const { tag, cached } = await buildImage(project, { onProgress: progress });
  log(`image: ${tag}${cached ? " (cached)" : ""}`);
  progress(`cloning ${project.repos.length} repo(s) and starting the container`);
  if (agent) return dispatchThroughGateway({ agent, project, tag, spec, specPath, budget, prompt, memory, log, progress });
  const session = await createSession(project, { tag });
  log(`session: ${session.id}`);
  // --- memory: the same section as the workspace's generated CLAUDE.md / AGENTS.md, before the agent starts ---
  const memoryRecord = await memory.give(session.state.workspace);
  // A project's own agent command gets the prompt in BULKHEAD_PROMPT.
  const job = await session.inject({ env: { BULKHEAD_PROMPT: prompt } });
  progress(`agent running as job ${job.id}`);
  // Metered while it runs: when the budget runs out, the agent is stopped there and then.
  const { metered, exitCode, report } = await meterAgentJob(job, { budget, spec, progress });
  log(`agent: exit ${exitCode}, ${report.totalTokens} tokens${metered.stoppedBy ? `, stopped by the ${metered.stoppedBy} budget` : ""}`);
  await writeFileAtomic(
    recordPath(session),
    JSON.stringify({
      spec: resolve(specPath),
      job: job.id,
      report,
      stoppedBy: metered.stoppedBy,
      agent: null,
      memory: memoryRecord,
    } satisfies DispatchRecord),
  );
  return { session: session.id, job: job.id, exitCode, report, stoppedBy: metered.stoppedBy, prompt, memory: memoryRecord };
}

/**
 * dispatch's agent path: the session sealed to the gateway, which meters and bounds every call.
 * A gateway this call serves itself listens in the session's own directory
 * (`<home>/sessions/<id>/gateway/`, kept with the session), so `bulkhead continue` can serve one
 * there again: the box's mount of that directory is fixed when the session is created.
 */
async function dispatchThroughGateway({
  agent,
  project,
  tag,
  spec,
  specPath,
  budget,
  prompt,
  memory,
  log,
  progress,
}: Reporter & {
  agent: { provider: AgentProvider; gateway?: Gateway; socketPath?: string };
  project: Project;
  tag: string;
  spec: TaskSpec;
  specPath: string;
  budget: Budget;
  prompt: string;
  memory: Awaited<ReturnType<typeof prepareDispatchMemory>>;
  progress: (line: string) => void;
}): Promise<DispatchResult> {
  // The same home createSession defaults to, given explicitly so the gateway directory sits beside the session's.
  const home = bulkheadHome();
  let ownDir: string | undefined;
  if (!agent.gateway && !agent.socketPath) {
    mkdirSync(join(home, "sessions"), { recursive: true });
    ownDir = mkdtempSync(join(home, "sessions", ".gateway-"));
    // The session user (not root) connects through the mounted directory: mkdtemp's 0700 would stop it.
    chmodSync(ownDir, 0o755);
  }
  let socketPath = agent.socketPath ?? (ownDir ? join(ownDir, "gateway.sock") : undefined);
  if (agent.gateway && !socketPath) {
    const address = agent.gateway.addresses.find((entry) => "path" in entry);
    if (!address || !("path" in address))
      throw new InvalidArgumentError(
        "agent.gateway",
        "the gateway listens on no unix socket: a sealed session reaches it only through one",
      );
    socketPath = address.path;
  }
  const gateway = agent.gateway ?? (await createGateway({ listen: { path: socketPath! } }));
  try {
    progress(`cloning ${project.repos.length} repo(s) and starting the container, sealed to the gateway`);
    const session = await createSession(project, { tag, home, gateway: { socketPath: socketPath! } });
    if (ownDir) {
      // Renamed, not copied: the box's mount follows the directory, and the listening socket with it.
      const inSession = sessionGatewayDir(session);
      renameSync(ownDir, inSession);
      socketPath = join(inSession, "gateway.sock");
      ownDir = undefined;
    }
    // Taken before the agent runs, when the socket is certainly the gateway's: continue checks it by this.
    const gatewaySocketId = socketIdentity(socketPath!);
    log(`session: ${session.id}`);
    // --- memory: written into the workspace before the agent starts ---
    const memoryRecord = await memory.give(session.state.workspace);
    const run = await runGatewayAgent(session, { gateway, provider: agent.provider, prompt, budget, spec, progress });
    const { job, exitCode, report, stoppedBy } = run;
    log(
      `agent: exit ${exitCode}; gateway: ${run.calls} call(s), ${report.totalTokens} tokens from the upstream's usage${stoppedBy ? `, stopped by the ${stoppedBy} budget` : ""}`,
    );
    await writeFileAtomic(
      recordPath(session),
      JSON.stringify({
        spec: resolve(specPath),
        job: job.id,
        report,
        stoppedBy,
        agent: agent.provider.name,
        memory: memoryRecord,
        gatewaySocket: socketPath!,
        gatewaySocketId,
        toolResultTokens: run.toolResultTokens,
      } satisfies DispatchRecord),
    );
    return { session: session.id, job: job.id, exitCode, report, stoppedBy, prompt, memory: memoryRecord };
  } finally {
    if (!agent.gateway) await gateway.close();
    // Still set only when the session was not made: the directory was never moved into it.
    if (ownDir) rmSync(ownDir, { recursive: true, force: true });
  }
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
  const guard = createMultiRepoGuard({
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
    ...(record.toolResultTokens ? { toolResultTokens: record.toolResultTokens } : {}),
    next,
    ...(record.memory ? { memoryGiven: record.memory.given } : {}),
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

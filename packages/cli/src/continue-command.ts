import { existsSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import type { Budget } from "@bulkhead/budget";
import type { AgentProvider, TaskSpec, UsageReport } from "@bulkhead/core";
import type { Session } from "@bulkhead/sandbox";
import { single, UsageError, type Command, type Flags, type Io, type Outcome } from "./command.js";
import { dispatchRecordPath, sessionGatewayDir, type DispatchRecord } from "./dispatch-record.js";
import { repoMap } from "./repo-map.js";

/** `--ref <repo>/<file>:<line>=<what>` (or without the repo) → a pattern reference for the continuation prompt. */
export function parseReference(text: string, repos: readonly string[]): { repo?: string; file: string; line: number; what: string } {
  const match = /^([^=]+):(\d+)=(.+)$/s.exec(text);
  if (!match) throw new UsageError(`--ref: expected <file>:<line>=<what to follow there>, got "${text}"`);
  const [, path, line, what] = match as unknown as [string, string, string, string];
  const slash = path.indexOf("/");
  const repo = slash > 0 && repos.includes(path.slice(0, slash)) ? path.slice(0, slash) : undefined;
  return { ...(repo ? { repo } : {}), file: repo ? path.slice(slash + 1) : path, line: Number(line), what };
}

/**
 * `bulkhead continue <spec>`: what the previous agent finished, what remains, and the prompt for
 * the next one, with pattern references and the project's own check run before anything spawns.
 * Exit 0 when nothing remains, 2 when work remains (the task is partial) or the check fails.
 */
async function continueFromSpec(specPath: string, flags: Flags): Promise<Outcome> {
  const { loadTaskSpec } = await import("@bulkhead/core");
  const { assessCompletion, checkBeforeSpawn, renderContinuationPrompt } = await import("@bulkhead/handover");
  const spec = await loadTaskSpec(specPath);
  if (spec.expectedFiles.length === 0)
    throw new UsageError(
      `${specPath} lists no expected_files: continue compares them with the repositories, so add what the task must create or modify`,
    );
  const repos = repoMap(flags.repo as string[] | undefined, "--repo");
  const base = repoMap(flags.base as string[] | undefined, "--base");
  const expected = spec.expectedFiles.map((file) => ({ repo: file.repo, path: file.path, change: file.change ?? "modify" }));
  for (const item of expected) {
    if (!(item.repo in repos)) throw new UsageError(`--repo: ${specPath} expects files in "${item.repo}": pass --repo ${item.repo}=<dir>`);
    if (!(item.repo in base)) throw new UsageError(`--base: pass the commit the task started from, --base ${item.repo}=<sha>`);
  }
  const references = ((flags.ref as string[] | undefined) ?? []).map((text) => parseReference(text, Object.keys(repos)));
  // Seed 003: point to specific EXISTING files and line numbers; a reference to nothing misleads the agent.
  const { resolvePathInside } = await import("@bulkhead/core");
  for (const reference of references) {
    const repo = reference.repo ?? spec.ownership.primaryRepo;
    const root = repos[repo];
    const found = root === undefined ? undefined : resolvePathInside(root, reference.file, { links: "inside" });
    if (!found?.ok || !found.stats?.isFile())
      throw new UsageError(`--ref: ${repo}/${reference.file} does not exist: point to an existing file (and a line in it)`);
    const lineCount = readFileSync(found.absolute, "utf8").split("\n").length;
    if (reference.line < 1 || reference.line > lineCount)
      throw new UsageError(`--ref: ${repo}/${reference.file} has ${lineCount} lines, not a line ${reference.line}`);
  }
  const assessment = await assessCompletion({ expected, repos, base });
  const prompt = renderContinuationPrompt({ assessment, task: spec, references });
  // Seed 003: check before spawning. The project's own check, in the primary repo.
  const checkCommand = single(flags, "check");
  const check =
    checkCommand === undefined
      ? undefined
      : await checkBeforeSpawn({ command: ["sh", "-c", checkCommand], cwd: repos[spec.ownership.primaryRepo] ?? Object.values(repos)[0]! });
  const complete = assessment.missing.length === 0;
  const text = [
    prompt.trimEnd(),
    "",
    ...(check
      ? [`check \`${checkCommand}\`: ${check.ok ? "passed" : `failed (exit ${check.exitCode}): fix the partial state before spawning`}`]
      : []),
    complete ? "nothing remains: the task is complete" : `${assessment.missing.length} item(s) remain: the task is partial`,
  ];
  return { code: complete && (check?.ok ?? true) ? 0 : 2, data: { complete, assessment, prompt, check: check ?? null }, text };
}

type HostRecord = DispatchRecord;

const KINDS: Record<string, "contextRead" | "generation" | "toolCalls" | "sessionTotal" | "usd"> = {
  generation: "generation",
  session_total: "sessionTotal",
  "session-total": "sessionTotal",
  tool_calls: "toolCalls",
  "tool-calls": "toolCalls",
  context_read: "contextRead",
  "context-read": "contextRead",
  usd: "usd",
};

/** `--extend generation=+5000` → the budget kind and the amount to add. */
export function parseExtension(text: string): { kind: (typeof KINDS)[string]; amount: number } {
  const match = /^([a-z_-]+)=\+?(\d+(?:\.\d+)?)$/.exec(text.trim());
  const kind = match ? KINDS[match[1]!] : undefined;
  const amount = match ? Number(match[2]) : NaN;
  if (!kind || !(amount > 0) || (kind !== "usd" && !Number.isSafeInteger(amount)))
    throw new UsageError(
      `--extend: expected <budget>=+<amount> with a budget of generation, session_total, tool_calls, context_read or usd, got "${text}"`,
    );
  return { kind, amount };
}

const refused = (data: Record<string, unknown>, message: string): Outcome => ({
  code: 2,
  data: { refused: true, ...data, reason: message },
  text: [message],
});

/** The host-side record of a dispatched session, or wrong usage naming the session. */
async function recordOf(sessionId: string) {
  const { getSession, SessionError } = await import("@bulkhead/sandbox");
  const { InvalidArgumentError } = await import("@bulkhead/core");
  let session;
  try {
    session = getSession(sessionId);
  } catch (error) {
    // In the user's terms: which argument, and where to look (not the sandbox's "get:" step).
    if (SessionError.isInstance(error) && (error as InstanceType<typeof SessionError>).step === "get")
      throw new UsageError(`<session>: there is no session ${sessionId} on this host: see bulkhead session list`);
    if (InvalidArgumentError.isInstance(error))
      throw new UsageError(`<session>: ${sessionId} is not a session id (like s1a2b3c4d5e6f7): see bulkhead session list`);
    throw error;
  }
  const path = dispatchRecordPath(session);
  if (!existsSync(path))
    throw new UsageError(`<session>: ${sessionId} was not started by bulkhead dispatch (no record of its result): nothing to continue`);
  return { session, path, record: JSON.parse(readFileSync(path, "utf8")) as HostRecord };
}

/**
 * Files and ownership of `next` that `first` does not grant: a continuation may narrow the
 * scope, never widen it. Both scopes are resolved against the session's source repositories.
 */
async function widening(firstPath: string, nextPath: string, repos: Record<string, string>): Promise<string[]> {
  const { loadTaskSpec, resolveScope } = await import("@bulkhead/core");
  const { createTokenCounter } = await import("@bulkhead/budget");
  const [first, next] = await Promise.all([loadTaskSpec(firstPath), loadTaskSpec(nextPath)]);
  const problems: string[] = [];
  if (next.ownership.primaryRepo !== first.ownership.primaryRepo)
    problems.push(`primary_repo "${next.ownership.primaryRepo}" is not the first task's "${first.ownership.primaryRepo}"`);
  for (const repo of next.ownership.allowedCrossRepoWrites)
    if (!first.ownership.allowedCrossRepoWrites.includes(repo)) problems.push(`allowed_cross_repo_writes adds "${repo}"`);
  for (const repo of next.ownership.allowedCrossRepoReads)
    if (!first.ownership.allowedCrossRepoReads.includes(repo)) problems.push(`allowed_cross_repo_reads adds "${repo}"`);
  const firstRepos = new Set(first.contextScope.repos.map((entry) => entry.name));
  for (const entry of next.contextScope.repos) if (!firstRepos.has(entry.name)) problems.push(`context_scope adds repo "${entry.name}"`);
  if (problems.length > 0) return problems;
  using counter = createTokenCounter({ encoding: "o200k_base" });
  const within = (spec: typeof first) =>
    Object.fromEntries(spec.contextScope.repos.filter((entry) => entry.name in repos).map((entry) => [entry.name, repos[entry.name]!]));
  const [firstScope, nextScope] = await Promise.all([
    resolveScope(first, { repos: within(first), counter }),
    resolveScope(next, { repos: within(next), counter }),
  ]);
  const outside = nextScope.files.filter((file) => !firstScope.canRead(file.repo, file.path));
  problems.push(...outside.slice(0, 20).map((file) => `${file.repo}/${file.path} is outside the first task's scope`));
  if (outside.length > 20) problems.push(`and ${outside.length - 20} more file(s) outside it`);
  return problems;
}

/** How a continuation run ended, or why it could not start (a refusal, exit 2). */
type ContinuationRun =
  | { refused: string }
  | {
      job: { id: string };
      exitCode: number;
      report: UsageReport;
      stoppedBy: string | null;
      /** The conversation the run ended in, and the one it resumed. */
      conversation?: string;
      resumed?: string;
      toolResultTokens?: number;
    };

interface ContinuationInput {
  session: Session;
  prompt: string;
  /** The stopped job and its conversation, which continues (`--extend`); none for `--spec`. */
  resume: { job: string; conversation: string } | undefined;
  budget: Budget;
  spec: TaskSpec;
  progress: (line: string) => void;
}

/**
 * A built-in provider's continuation, sealed to the gateway as dispatch's run was: a gateway is
 * served again at the socket the session's box was created with (the host's credentials and
 * upstreams from the environment, as dispatch's), with the continued budget on the wire, and the
 * agent resumed through the provider. Its usage is the gateway tracker's, from the upstream.
 */
async function continueThroughGateway({
  session,
  socketPath,
  provider,
  prompt,
  resume,
  budget,
  spec,
  progress,
}: ContinuationInput & { provider: AgentProvider; socketPath: string }): Promise<ContinuationRun> {
  const { agentSessionIdOf } = await import("@bulkhead/agents");
  const { createGateway } = await import("@bulkhead/gateway");
  progress(`serving the gateway again at ${socketPath}`);
  await using gateway = await createGateway({ listen: { path: socketPath } });
  const { runGatewayAgent } = await import("./run-gateway-agent.js");
  const run = await runGatewayAgent(session, {
    gateway,
    provider,
    prompt,
    ...(resume ? { resume: resume.job } : {}),
    budget,
    spec,
    progress,
  });
  const conversation = await agentSessionIdOf(run.job, provider);
  return { ...run, ...(conversation ? { conversation } : {}) };
}

/**
 * The project's agent command's continuation: it gets the prompt in `BULKHEAD_PROMPT`, the
 * conversation to resume in `BULKHEAD_RESUME` (taken from the stopped job's stream-json), and
 * its stream-json is metered against the continued budget.
 */
async function continueCommand({ session, prompt, resume, budget, spec, progress }: ContinuationInput): Promise<ContinuationRun> {
  const resumed = resume?.conversation;
  const job = await session.inject({
    env: resumed
      ? { BULKHEAD_PROMPT: prompt, BULKHEAD_RESUME: resumed, BULKHEAD_CONTINUATION: "extend" }
      : { BULKHEAD_PROMPT: prompt, BULKHEAD_CONTINUATION: "spec" },
  });
  progress(`agent running as job ${job.id}${resumed ? ` (conversation ${resumed})` : ""}`);
  const { meterAgentJob } = await import("./meter-agent-job.js");
  const { metered, exitCode, report } = await meterAgentJob(job, { budget, spec, progress });
  const conversation = metered.sessionId ?? resumed;
  return {
    job,
    exitCode,
    report,
    stoppedBy: metered.stoppedBy,
    ...(conversation ? { conversation } : {}),
    ...(resumed ? { resumed } : {}),
  };
}

/**
 * `bulkhead continue <session>`: the person's decision on a stopped or partial dispatch, as a
 * flow. `--extend` raises the budget (recorded in the session's ledger with who approved it) and
 * resumes the same agent conversation; `--spec` starts a continuation whose scope must be a
 * subset of the first. Either way the run is metered as dispatch meters it, and the session's
 * record is updated so `harvest` sees how it ended.
 */
async function continueSession(sessionId: string, flags: Flags, io: Io): Promise<Outcome> {
  const extensions = ((flags.extend as string[] | undefined) ?? []).map(parseExtension);
  const narrower = single(flags, "spec");
  const approvedBy = single(flags, "approved-by");
  if (extensions.length === 0 && narrower === undefined)
    throw new UsageError("continue <session> needs --extend <budget>=+<amount> --approved-by <name>, or --spec <narrower.yaml>");
  if (extensions.length > 0 && narrower !== undefined)
    throw new UsageError("--extend and --spec: give one (raise the budget, or reshape the task)");
  if (extensions.length > 0 && !/^[^\n<>]{1,200}$/.test(approvedBy ?? ""))
    throw new UsageError("--approved-by: a budget is raised only with the name of who approved it");
  if (narrower !== undefined && !existsSync(narrower)) throw new UsageError(`--spec: ${narrower} does not exist`);

  const { session, path, record } = await recordOf(sessionId);
  const repos = Object.fromEntries(session.state.repos.map((repo) => [repo.name, repo.source]));
  if (extensions.length > 0 && !record.stoppedBy)
    return refused(
      { session: sessionId },
      `session ${sessionId} was not stopped by a budget: there is nothing to extend (continue with --spec to reshape the task)`,
    );
  if (narrower !== undefined) {
    const problems = await widening(record.spec, narrower, repos);
    if (problems.length > 0)
      return refused(
        { session: sessionId, widened: problems },
        `${narrower} widens the first task's scope: ${problems.join("; ")}. A continuation may narrow the scope, never widen it`,
      );
  }

  const { addUsageReports, loadTaskSpec, resolveScope, writeFileAtomic } = await import("@bulkhead/core");
  const { createBudget, createFileLedger, createTokenCounter, restoreBudget } = await import("@bulkhead/budget");
  const specPath = narrower ?? record.spec;
  const spec = await loadTaskSpec(specPath);
  for (const { kind } of extensions)
    if (spec.budgets[kind] === undefined)
      throw new UsageError(`--extend: ${specPath} sets no ${kind} budget, so there is none to raise: extend one it sets`);
  const { agentSessionIdOf, claudeCode } = await import("@bulkhead/agents");
  const provider = record.agent ? (await import("./agent-flags.js")).providerNamed(record.agent) : undefined;
  // Checked before anything is booked: a continuation that cannot start leaves the ledger as it was.
  let socketPath: string | undefined;
  if (provider) {
    // The box reaches only the socket it was created with: the continuation's gateway must serve there.
    socketPath = record.gatewaySocket ?? session.state.gateway?.socketPath;
    if (!socketPath)
      return refused(
        { session: sessionId },
        `session ${sessionId} is not sealed to a gateway: its ${provider.name} agent cannot run again`,
      );
    // Read by identity, never through a link: the socket's directory is mounted into the box.
    const { gatewaySocketState } = await import("./gateway-socket.js");
    const found = await gatewaySocketState(socketPath, record.gatewaySocketId);
    // dispatch's own socket directory is the session's; a socket path of the caller's may hold their gateway.
    const own = socketPath === join(sessionGatewayDir(session), "gateway.sock");
    if (found.state === "serving" || found.state === "blocked" || (found.state === "foreign" && !own)) {
      const { GatewayFailedError } = await import("@bulkhead/gateway");
      throw new GatewayFailedError(
        found.state === "serving"
          ? `a gateway already serves ${socketPath}, the socket session ${sessionId} is sealed to: stop it (or continue from the program that serves it) and run continue again`
          : `${found.reason}: session ${sessionId} is sealed to that path, so nothing there was connected to or replaced; remove it (or continue from the program whose gateway serves there) and run continue again`,
      );
    }
    if (found.state === "foreign") {
      // unlink removes a link itself, never what it points at; the continuation's gateway then listens afresh.
      io.progress(`${found.reason}: treated as stale, not connected to, and replaced by the continuation's gateway`);
      unlinkSync(socketPath);
    }
  }
  let resume: ContinuationInput["resume"];
  if (narrower === undefined) {
    const conversation = await agentSessionIdOf(session.job(record.job), provider ?? claudeCode());
    if (!conversation)
      return refused({ session: sessionId }, `job ${record.job} of session ${sessionId} printed no conversation id: it cannot be resumed`);
    resume = { job: record.job, conversation };
  }
  let prompt: string;
  if (narrower === undefined) {
    // The same conversation: the agent keeps what it read and did; it is told only what changed.
    prompt = `Your budget was raised (${extensions.map(({ kind, amount }) => `${kind} +${amount}`).join(", ")}, approved by ${approvedBy}). Continue the task where you stopped.`;
  } else {
    const { renderTaskPrompt } = await import("@bulkhead/handover");
    using counter = createTokenCounter({ encoding: "o200k_base" });
    const scopeRepos = Object.fromEntries(spec.contextScope.repos.map((entry) => [entry.name, repos[entry.name]!]));
    const scope = await resolveScope(spec, { repos: scopeRepos, counter, stopAtLimit: true });
    scope.assertWithinLimits();
    prompt = renderTaskPrompt({ spec, scope });
  }

  // The budget lives in the session's ledger on the host: the dispatch's spend is booked once,
  // then every extension (who, how much) and every continuation's spend.
  // One ledger per spec: a reshaped task (--spec) has its own budgets; --extend continues the current one.
  const { createHash } = await import("node:crypto");
  const { resolve } = await import("node:path");
  const ledgerName = `budget-${createHash("sha256").update(resolve(specPath)).digest("hex").slice(0, 12)}.jsonl`;
  const ledger = createFileLedger({ path: join(session.home, "sessions", session.id, ledgerName) });
  let run: ContinuationRun;
  let budget: Budget;
  try {
    const limits = Object.fromEntries(Object.entries(spec.budgets).filter(([, value]) => value !== undefined));
    const budgetOptions = { id: spec.id ?? "task", limits, ledger };
    const known = (await ledger.read()).events.length > 0;
    budget = known ? await restoreBudget(budgetOptions) : createBudget(budgetOptions);
    if (!known && narrower === undefined) {
      // The first extension books what the dispatch spent, so the raised limit counts from there
      // (with the tool results the gateway charged to the tool-call budget).
      budget.charge({ spent: record.report.usage });
      if ((record.toolResultTokens ?? 0) > 0 && spec.budgets.toolCalls !== undefined)
        budget.charge({ spent: { toolCalls: record.toolResultTokens!, sessionTotal: 0 } });
    }
    for (const { kind, amount } of extensions) budget.extend({ kind, amount, approvedBy: approvedBy!, reason: `continue ${sessionId}` });
    const input = { session, prompt, resume, budget, spec, progress: io.progress };
    run = provider ? await continueThroughGateway({ ...input, provider, socketPath: socketPath! }) : await continueCommand(input);
  } finally {
    await ledger.close();
  }
  if ("refused" in run) return refused({ session: sessionId }, run.refused);
  const { job, exitCode, report, stoppedBy, conversation } = run;
  const next: HostRecord = {
    ...record,
    spec: resolve(specPath),
    job: job.id,
    // The task's consumption so far (the dispatch and every continuation): what harvest's handover reports.
    report: addUsageReports(record.report, report),
    stoppedBy,
    toolResultTokens: (record.toolResultTokens ?? 0) + (run.toolResultTokens ?? 0),
    continuations: [
      ...(record.continuations ?? []),
      {
        job: job.id,
        mode: narrower === undefined ? "extend" : "spec",
        spec: specPath,
        ...(approvedBy ? { approvedBy } : {}),
        ...(extensions.length > 0 ? { extensions: Object.fromEntries(extensions.map(({ kind, amount }) => [kind, amount])) } : {}),
      },
    ],
  };
  // harvest reads the same record: it learns how the continuation ended.
  await writeFileAtomic(path, JSON.stringify(next));
  const completed = exitCode === 0 && !stoppedBy;
  const data = {
    session: sessionId,
    job: job.id,
    mode: narrower === undefined ? "extend" : "spec",
    conversation: conversation ?? null,
    resumed: run.resumed ?? null,
    exitCode,
    stoppedBy,
    completed,
    report,
    limits: Object.fromEntries(
      (["generation", "sessionTotal", "toolCalls", "usd"] as const).flatMap((kind) =>
        budget.limit(kind) === undefined ? [] : [[kind, budget.limit(kind)]],
      ),
    ),
  };
  const text = [
    `continued ${sessionId} as job ${job.id}${conversation ? ` in conversation ${conversation}` : ""}: exit ${exitCode}, ${report.totalTokens} tokens${provider ? " booked by the gateway" : ""}`,
    completed
      ? `done: harvest it with bulkhead harvest ${sessionId}`
      : stoppedBy
        ? `stopped again by the ${stoppedBy} budget: extend it again, or reshape the task with --spec`
        : `the agent failed (exit ${exitCode})`,
  ];
  return { code: completed ? 0 : stoppedBy ? 2 : 1, data, text };
}

/** `bulkhead continue`: the continuation of a task, from its spec or from a dispatched session. */
export const continueCommands: Record<string, Command> = {
  continue: {
    usage:
      "bulkhead continue <spec|session> [--repo <name>=<dir>]... [--base <name>=<sha>]... [--ref <file>:<line>=<what>]... [--check <shell command>] [--extend <budget>=+<amount>]... [--approved-by <name>] [--spec <narrower.yaml>]",
    example: "bulkhead continue s123 --extend generation=+5000 --approved-by ana",
    async run([target], flags, io) {
      // A spec file: what remains and the prompt for it. Anything else names a dispatched session.
      if (existsSync(target!) && /\.(ya?ml|json)$/.test(target!)) return continueFromSpec(target!, flags);
      if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(target!))
        throw new UsageError(`<spec|session>: ${target} is neither a spec file nor a session id`);
      return continueSession(target!, flags, io);
    },
  },
};

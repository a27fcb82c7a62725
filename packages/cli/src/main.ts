import { parseArgs } from "node:util";
import { ok, single, UsageError, type Command, type Flags, type Io, type Outcome } from "./command.js";
import { continueCommands } from "./continue-command.js";
import { hookCommands } from "./hook-commands.js";
import { proposalsCommands, proposalsDir } from "./proposals-commands.js";
import { repoMap } from "./repo-map.js";
import { VERSION } from "./version.js";

// Only node:util and the command tables load at start-up: every package a command needs is
// imported when that command runs, so `bulkhead --help` starts in a few tens of milliseconds.

export interface MainOptions {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  /**
   * Where long steps (image bake, clones, gates, jobs) report as they go. Never called with
   * `--json`. @default one dim line per step on stderr when stderr is a TTY, else nothing
   */
  progress?: (line: string) => void;
}

const LEAD_AUTHOR = { name: "bulkhead lead", email: "lead@bulkhead.local" };

/** What a usage line asks for: required positionals and flags (outside [brackets] and before " -- "), the most positionals, every flag it names. */
function requirements(usage: string, name: string): { positionals: number; maxPositionals: number; flags: string[]; known: Set<string> } {
  const all = usage.slice(`bulkhead ${name}`.length);
  const [head, passthrough] = all.split(" -- ") as [string, string | undefined];
  const rest = head.replace(/\[[^\]]*\](\.\.\.)?/g, "");
  const tokens = rest.trim().split(/\s+/).filter(Boolean);
  const flags: string[] = [];
  let positionals = 0;
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index]!;
    if (token.startsWith("--")) {
      flags.push(token.slice(2));
      index++;
    } else if (token.startsWith("<")) positionals++;
  }
  const known = new Set([...all.matchAll(/--([a-z][a-z-]*)/g)].map((match) => match[1]!));
  // Every <argument> of the usage outside flag values, optional or not; "..." or " -- " means any number.
  const withoutFlagValues = head.replace(/--[a-z-]+ <[^>]+>/g, "");
  const variadic = passthrough !== undefined || /(>|\])\.\.\./.test(withoutFlagValues);
  const maxPositionals = variadic ? Infinity : [...withoutFlagValues.matchAll(/<[^>]+>/g)].length;
  return { positionals, maxPositionals, flags, known };
}

/** The spec's repos must each have a --repo: said in the command line's terms, before anything resolves. */
function requireRepos(spec: { contextScope: { repos: readonly { name: string }[] } }, repos: Record<string, string>, specPath: string) {
  for (const { name } of spec.contextScope.repos)
    if (!(name in repos)) throw new UsageError(`--repo: ${specPath} scopes repo "${name}": pass --repo ${name}=<dir>`);
}

async function scopeOf(specPath: string, repos: Record<string, string>) {
  const { resolveSpecScope } = await import("./scope-run.js");
  return resolveSpecScope(specPath, repos, (spec) => requireRepos(spec, repos, specPath));
}

/** What to take out of an over-limit scope; null when it fits. */
async function adviceFor(
  scope: { files: readonly { repo: string; path: string; tokens: number }[]; complete: boolean },
  limits: { maxFiles: number; maxTokens: number },
) {
  return (await import("./scope-run.js")).adviceFor(scope, limits);
}

function narrowingText(advice: Awaited<ReturnType<typeof adviceFor>>): string[] {
  if (!advice) return [];
  const count = (value: number) => value.toLocaleString("en-US");
  return [
    ...(advice.estimated ? ["counting stopped at the limit: the parts below are sized from file sizes (about 4 bytes a token)"] : []),
    advice.fits
      ? `to fit, exclude ${advice.remove.length === 1 ? "this" : `these ${advice.remove.length}`} (leaves ${count(advice.after.files)} files, ${count(advice.after.tokens)} tokens):`
      : "no removal brings the scope under its limits: split the task or raise the limits. Largest parts:",
    ...advice.remove.map(
      (step) =>
        `  ${step.repo}/${step.path}${step.kind === "directory" ? "/" : ""}  ${count(step.tokens)} tokens${step.kind === "directory" ? `, ${count(step.files)} files` : ""}`,
    ),
  ];
}

/** A whole number flag, or wrong usage naming it. */
function wholeNumber(flags: Flags, name: string, { min = 1 } = {}): number | undefined {
  const text = single(flags, name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min)
    throw new UsageError(`--${name}: expected a whole number, at least ${min}, got "${text}"`);
  return value;
}

/** The one planner behind `plan waves` and `plan shared`: each spec's scope resolved once. */
async function planSpecs(specs: string[], flags: Flags) {
  const { loadTaskSpec } = await import("@bulkhead/core");
  const { planWork } = await import("@bulkhead/git-lead");
  const { basename } = await import("node:path");
  const repos = repoMap(flags.repo as string[] | undefined);
  const maxPerWave = wholeNumber(flags, "max-per-wave") ?? Infinity;
  const tasks = await Promise.all(
    specs.map(async (path) => {
      const spec = await loadTaskSpec(path);
      requireRepos(spec, repos, path);
      return { id: spec.id ?? basename(path).replace(/\.(ya?ml|json)$/, ""), dependsOn: spec.dependsOn, spec };
    }),
  );
  return planWork({ tasks, repos, maxPerWave });
}

/**
 * The lead's held submissions that still wait for a person: a held submission whose proposals
 * were all decided (rejected, or approved and landed by `proposals approve`) is not held any more.
 */
async function stillHeld<TResult extends { status: string; proposals?: { proposalId: string }[] }>(held: TResult[], flags: Flags) {
  const { createFileProposalStore } = await import("@bulkhead/core");
  const store = createFileProposalStore(proposalsDir(flags));
  const waiting: TResult[] = [];
  const decided: (TResult & { decisions: { proposalId: string; status: string; by?: string; reason?: string }[] })[] = [];
  for (const result of held) {
    const decisions = await Promise.all(
      (result.proposals ?? []).map(async ({ proposalId }) => {
        const proposal = await store.get(proposalId).catch(() => undefined);
        return {
          proposalId,
          status: proposal?.status ?? "pending",
          ...(proposal?.decidedBy ? { by: proposal.decidedBy } : {}),
          ...(proposal?.rejectionReason ? { reason: proposal.rejectionReason } : {}),
        };
      }),
    );
    if (decisions.length > 0 && decisions.every((decision) => decision.status !== "pending")) decided.push({ ...result, decisions });
    else waiting.push(result);
  }
  return { waiting, decided };
}

/**
 * `--remote <url>`: the lead lands every commit on the team's shared remote (pushed with a lease
 * on its tip; `<repo-dir>` is the lead's own clone). Checked here so a bad value is named as the flag.
 */
function leadRemote(flags: Flags): { remote?: { url: string } } {
  const url = single(flags, "remote");
  if (url === undefined) return {};
  if (url === "" || url.startsWith("-") || /^(ext|fd)::/.test(url) || /[\0\n]/.test(url))
    throw new UsageError(
      `--remote: expected the shared remote as git push takes it (a path to a bare repository, ssh://, https://, git://), got ${JSON.stringify(url)}`,
    );
  return { remote: { url } };
}

const commands: Record<string, Command> = {
  dispatch: {
    usage: "bulkhead dispatch <project.yaml> --spec <handover.yaml> [--dir <memory>] [--agent claude-code|codex [--gateway <socket>]]",
    example: "bulkhead dispatch bulkhead.yaml --spec handover.yaml --json",
    async run([project], flags, io) {
      const { dispatch } = await import("./composites.js");
      const { providerNamed } = await import("./agent-flags.js");
      const lines: string[] = [];
      const agentName = single(flags, "agent");
      const gateway = single(flags, "gateway");
      const result = await dispatch(project!, single(flags, "spec")!, {
        log: (line) => lines.push(line),
        progress: io.progress,
        ...(single(flags, "dir") !== undefined ? { memoryDir: single(flags, "dir")! } : {}),
        // --- agents: a built-in provider, reaching its model only through the gateway dispatch serves at --gateway ---
        ...(agentName !== undefined
          ? {
              agent: {
                provider: providerNamed(agentName),
                ...(gateway !== undefined ? { socketPath: gateway } : {}),
              },
            }
          : {}),
      });
      // Stopped by a budget is a refusal (2), whatever the killed agent's exit code; else its exit decides.
      return { code: result.stoppedBy ? 2 : result.exitCode === 0 ? 0 : 1, data: result, text: lines };
    },
  },
  harvest: {
    usage: "bulkhead harvest <session> [--out handover.md] [--next <dependency>]...",
    example: "bulkhead harvest s123 --out handover.md",
    async run([id], flags, io) {
      const { harvestSession } = await import("./composites.js");
      const lines: string[] = [];
      const out = single(flags, "out");
      const result = await harvestSession(id!, {
        ...(out !== undefined ? { out } : {}),
        next: (flags.next as string[] | undefined) ?? [],
        log: (line) => lines.push(line),
        progress: io.progress,
      });
      return { code: result.held.length > 0 ? 2 : 0, data: result, text: lines };
    },
  },
  finish: {
    usage: "bulkhead finish <session> [--out handover.md] [--next <dependency>]...",
    example: "bulkhead finish s123",
    async run([id], flags, io) {
      const { finish } = await import("./composites.js");
      const lines: string[] = [];
      const out = single(flags, "out");
      const result = await finish(id!, {
        ...(out !== undefined ? { out } : {}),
        next: (flags.next as string[] | undefined) ?? [],
        log: (line) => lines.push(line),
        progress: io.progress,
      });
      return { code: result.held.length > 0 ? 2 : 0, data: result, text: lines };
    },
  },
  "scope resolve": {
    usage: "bulkhead scope resolve <spec> --repo <name>=<dir> ... [--json]",
    example: "bulkhead scope resolve handover.yaml --repo backend-api=../backend-api",
    async run([spec], flags) {
      const { spec: parsed, scope } = await scopeOf(spec!, repoMap(flags.repo as string[] | undefined));
      const limits = { maxFiles: parsed.contextScope.maxFiles, maxTokens: parsed.contextScope.maxTokens };
      const narrowing = await adviceFor(scope, limits);
      const data = {
        narrowing,
        files: scope.files,
        totals: scope.totals,
        limits: { maxFiles: parsed.contextScope.maxFiles, maxTokens: parsed.contextScope.maxTokens },
        estimated: scope.estimated,
        complete: scope.complete,
        violations: scope.violations,
        toCreate: scope.toCreate,
        skipped: scope.skipped,
        refused: scope.refused,
        links: scope.links,
      };
      // Over a limit, a person needs the verdict and what to cut, not every file: the list is for --json.
      const over = scope.violations.length > 0;
      const text = [
        ...(over ? [] : scope.files.map((file) => `${file.repo}/${file.path}  ${file.tokens} tokens`)),
        ...scope.toCreate.map((file) => `${file.repo}/${file.path}  to create (does not exist yet)`),
        `${scope.totals.files} files, ${scope.totals.tokens} tokens (limits: ${parsed.contextScope.maxFiles} files, ${parsed.contextScope.maxTokens} tokens)${scope.toCreate.length > 0 ? `, ${scope.toCreate.length} to create` : ""}`,
        ...scope.violations.map((violation) => violation.message),
        ...narrowingText(narrowing),
      ];
      return { code: over ? 2 : 0, data, text };
    },
  },
  "budget check": {
    usage: "bulkhead budget check <spec> --repo <name>=<dir> ... [--json]",
    example: "bulkhead budget check handover.yaml --repo backend-api=../backend-api",
    async run([specPath], flags) {
      const { spec, scope } = await scopeOf(specPath!, repoMap(flags.repo as string[] | undefined));
      // The same check dispatch makes: the context-read budget and the session total both hold it.
      const contextRead = spec.budgets.contextRead ?? spec.contextScope.maxTokens;
      const sessionTotal = spec.budgets.sessionTotal;
      const violations: { kind: string; limit: number; actual: number; message: string }[] = scope.violations.map((violation) => ({
        ...violation,
      })) as never;
      if (scope.totals.tokens > contextRead)
        violations.push({
          kind: "context-read",
          limit: contextRead,
          actual: scope.totals.tokens,
          message: `the scope holds ${scope.totals.tokens} tokens, over the context_read budget of ${contextRead}: narrow the scope or raise budgets.context_read`,
        });
      if (sessionTotal !== undefined && scope.totals.tokens > sessionTotal)
        violations.push({
          kind: "session-total",
          limit: sessionTotal,
          actual: scope.totals.tokens,
          message: `reading the scope alone (${scope.totals.tokens} tokens) is over the session_total budget of ${sessionTotal}: narrow the scope or raise budgets.session_total`,
        });
      const allowed = violations.length === 0;
      const limit = Math.min(contextRead, sessionTotal ?? Infinity);
      const narrowing = await adviceFor(scope, {
        maxFiles: spec.contextScope.maxFiles,
        maxTokens: Math.min(limit, spec.contextScope.maxTokens),
      });
      return {
        code: allowed ? 0 : 2,
        data: { allowed, tokens: scope.totals.tokens, contextRead, sessionTotal, violations, narrowing },
        text: allowed
          ? [`context: ${scope.totals.tokens} tokens of ${limit} allowed: ok`]
          : [
              `context: ${scope.totals.tokens} tokens of ${limit} allowed: refused`,
              ...violations.map((violation) => `- ${violation.message}`),
              ...narrowingText(narrowing),
            ],
      };
    },
  },
  "budget report": {
    usage: "bulkhead budget report <ledger.jsonl> [--task <id>]",
    example: "bulkhead budget report .bulkhead/ledger.jsonl --json",
    async run([path], flags) {
      const { existsSync } = await import("node:fs");
      if (!existsSync(path!))
        throw new UsageError(`<ledger.jsonl>: ${path} does not exist: pass the ledger file a budget or tracker wrote`);
      const { createFileLedger, restoreTracker } = await import("@bulkhead/budget");
      const ledger = createFileLedger({ path: path! });
      const { events, tornTail, corruptLines } = await ledger.read();
      const known = [...new Set(events.flatMap((event) => (event.type === "usage" ? [event.task] : [])))];
      const task = single(flags, "task");
      if (task !== undefined && !known.includes(task)) {
        await ledger.close();
        throw new UsageError(`--task: no usage of task "${task}" in ${path}${known.length > 0 ? ` (tasks: ${known.join(", ")})` : ""}`);
      }
      const tasks = known.filter((id) => task === undefined || id === task);
      const reports = await Promise.all(tasks.map(async (taskId) => (await restoreTracker({ taskId, ledger })).report()));
      await ledger.close();
      const { formatUsd } = await import("@bulkhead/core");
      const text = reports.map(
        (report) =>
          `${report.taskId}: ${report.totalTokens} tokens (context ${report.contextReadTokens}, generation ${report.generationTokens}, tools ${report.toolCallTokens})${report.usd === undefined ? "" : `, ${formatUsd(report.usd)}`}`,
      );
      if (tornTail || corruptLines > 0) text.push(`skipped: ${corruptLines} corrupt line(s)${tornTail ? " and a torn last line" : ""}`);
      return ok({ reports, tornTail, corruptLines }, text.length > 0 ? text : ["no usage recorded"]);
    },
  },
  ...hookCommands,
  ...continueCommands,
  ...proposalsCommands,
  "plan waves": {
    usage: "bulkhead plan waves <spec>... --repo <name>=<dir> ... [--max-per-wave N] [--json]",
    example: "bulkhead plan waves tasks/*.yaml --repo api=../api --max-per-wave 3",
    async run(specs, flags) {
      const plan = await planSpecs(specs, flags);
      return ok(
        { waves: plan.waves, shared: plan.shared },
        plan.waves.map((wave, index) => `wave ${index + 1}: ${wave.join(", ")}`),
      );
    },
  },
  "plan shared": {
    usage: "bulkhead plan shared <spec>... --repo <name>=<dir> ... [--json]",
    example: "bulkhead plan shared tasks/*.yaml --repo api=../api",
    async run(specs, flags) {
      const { shared } = await planSpecs(specs, flags);
      return ok(
        { shared },
        shared.length === 0
          ? ["no shared files"]
          : shared.map((entry) => `${entry.file}: ${entry.tasks.join(", ")} → ${entry.strategy}${entry.owner ? ` (${entry.owner})` : ""}`),
      );
    },
  },
  "handover render": {
    usage: "bulkhead handover render <handover.json> [--out handover.md]",
    example: "bulkhead handover render handover.json --out handover.md",
    async run([path], flags) {
      const { readFile, writeFile } = await import("node:fs/promises");
      const { handoverFromJson, renderHandover } = await import("@bulkhead/handover");
      const markdown = renderHandover(handoverFromJson(await readFile(path!, "utf8"), { source: path! }));
      const out = single(flags, "out");
      if (out !== undefined) await writeFile(out, markdown);
      return ok({ markdown }, [markdown]);
    },
  },
  "handover parse": {
    usage: "bulkhead handover parse <handover.md> [--lenient]",
    example: "bulkhead handover parse handover.md > handover.json",
    async run([path], flags) {
      const { readFile } = await import("node:fs/promises");
      const { handoverToJson, parseHandover } = await import("@bulkhead/handover");
      const document = parseHandover(await readFile(path!, "utf8"), { source: path!, lenient: flags.lenient === true });
      return ok(document, [handoverToJson(document).trimEnd()]);
    },
  },
  "handover check": {
    usage: "bulkhead handover check <handover.md> [--lenient]",
    example: "bulkhead handover check handover.md --lenient",
    async run([path], flags) {
      const { readFile } = await import("node:fs/promises");
      const { parseHandover } = await import("@bulkhead/handover");
      // --lenient: a hand-written handover (seed 000's own) may leave sections out.
      const document = parseHandover(await readFile(path!, "utf8"), { source: path!, lenient: flags.lenient === true });
      return ok({ valid: true, lenient: flags.lenient === true, status: document.status, consumed: document.consumed ?? null }, [
        `${path}: valid${flags.lenient === true ? " (lenient)" : ""}, ${document.status}${document.consumed ? `, consumed by ${document.consumed.by}` : ""}`,
      ]);
    },
  },
  "lead submit": {
    usage:
      "bulkhead lead submit <repo-dir> --issue <id> --worker <name> --message <text> [--gate <shell command>]... [--manifest <glob>]... [--fixup] [--id <key>] [--remote <url>] <file>...",
    example:
      "bulkhead lead submit . --issue RATE-1 --worker agent-1 --message 'Add rate limiting' --gate 'npm test' --manifest 'src/middleware/**' src/middleware/rateLimit.ts",
    async run([dir, ...files], flags, io) {
      if (files.length === 0) throw new UsageError("<file>: list at least one file to commit");
      const { createCommitLead } = await import("@bulkhead/git-lead");
      // Each --gate runs with `sh -c` in the repo; the lead commits only when every gate passes.
      const gates = ((flags.gate as string[] | undefined) ?? []).map((command) => ({ name: command, command: ["sh", "-c", command] }));
      const manifest = (flags.manifest as string[] | undefined) ?? [];
      const id = single(flags, "id");
      await using lead = await createCommitLead({ dir: dir!, author: LEAD_AUTHOR, gates, ...leadRemote(flags) });
      lead.on("gate-end", ({ gate }) => io.progress(`gate ${gate.name}: ${gate.ok ? "passed" : "failed"} in ${gate.durationMs} ms`));
      // Taking the lead settles what a stopped lead left first; say so, it changes the journal.
      lead.on("lead-recovered", ({ finished, rolledBack }) =>
        io.progress(`recovered a stopped lead's work: finished ${finished.length}, rolled back ${rolledBack.length}`),
      );
      if (gates.length > 0) io.progress(`running ${gates.length} gate(s)`);
      // Gates run in their own process group, out of reach of the terminal's Ctrl-C: an interrupt
      // aborts the submission, which kills them and refuses it cleanly.
      const interrupt = new AbortController();
      const stop = () => interrupt.abort(new Error("interrupted"));
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      try {
        const result = await lead.submit({
          abortSignal: interrupt.signal,
          issueId: single(flags, "issue")!,
          worker: single(flags, "worker")!,
          message: single(flags, "message")!,
          files,
          ...(manifest.length > 0 ? { manifest } : {}),
          ...(flags.fixup === true ? { fixup: true } : {}),
          ...(id !== undefined ? { id } : {}),
        });
        const reason = result.status === "committed" ? "" : result.reason.replace("submit with fixup: true", "submit again with --fixup");
        return {
          code: result.status === "committed" ? 0 : 2,
          data: result,
          text: [result.status === "committed" ? `committed ${result.sha}` : `${result.status}: ${reason}`],
        };
      } finally {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
      }
    },
  },
  "lead status": {
    usage: "bulkhead lead status <repo-dir> [--store <dir>] [--remote <url>]",
    example: "bulkhead lead status . --json",
    async run([dir], flags) {
      const { createCommitLead } = await import("@bulkhead/git-lead");
      // Read only: creating a lead and reading its status take no lock and recover nothing.
      await using lead = await createCommitLead({ dir: dir!, author: LEAD_AUTHOR, ...leadRemote(flags) });
      const status = await lead.status();
      const { waiting, decided } = await stillHeld(status.held as (typeof status.held)[number][] & { proposals?: never }[], flags);
      const pending = status.recoveryPending;
      return ok({ ...status, held: waiting, decided }, [
        `queue: ${status.queue.length}, in flight: ${status.inFlight ?? "none"}, held: ${waiting.length}${decided.length > 0 ? `, decided: ${decided.length}` : ""}`,
        ...(pending.length > 0
          ? [`recovery pending: ${pending.join(", ")} (a stopped lead's work): run bulkhead lead recover ${dir}`]
          : []),
        ...status.recentCommits.map((commit) => `${commit.sha.slice(0, 12)} ${commit.issueId}`),
      ]);
    },
  },
  "lead recover": {
    usage: "bulkhead lead recover <repo-dir> [--remote <url>]",
    example: "bulkhead lead recover .",
    async run([dir], flags) {
      const { createCommitLead } = await import("@bulkhead/git-lead");
      await using lead = await createCommitLead({ dir: dir!, author: LEAD_AUTHOR, ...leadRemote(flags) });
      const outcome = await lead.recover();
      return ok(outcome, [`finished ${outcome.finished.length}, rolled back ${outcome.rolledBack.length}`]);
    },
  },
  build: {
    usage: "bulkhead build <project.yaml> [--force]",
    example: "bulkhead build bulkhead.yaml",
    async run([path], flags, io) {
      const { buildImage, loadProject } = await import("@bulkhead/sandbox");
      io.progress("baking the image");
      const result = await buildImage(loadProject(path!), { force: flags.force === true, onProgress: io.progress });
      return ok(result, [`${result.tag}${result.cached ? " (cached)" : ""}`]);
    },
  },
  "session start": {
    usage: "bulkhead session start <project.yaml>",
    example: "bulkhead session start bulkhead.yaml --json",
    async run([path], _flags, io) {
      const { createSession, loadProject } = await import("@bulkhead/sandbox");
      const { withTeamRegistration } = await import("./team-registration.js");
      const project = loadProject(path!);
      io.progress(`cloning ${project.repos.length} repo(s) and starting the container`);
      // With BULKHEAD_STORE set, the session is recorded in the team's registry (team-registration.ts).
      const session = await withTeamRegistration((registration) => createSession(project, registration ? { registration } : {}));
      return ok({ id: session.id, workspace: session.state.workspace, repos: session.state.repos }, [session.id]);
    },
  },
  "session list": {
    usage: "bulkhead session list [--project <name>] [--stale-after <duration>]",
    example: "bulkhead session list --json",
    async run(_positionals, flags) {
      const { listSessions, listTeamSessions } = await import("@bulkhead/sandbox");
      const { ago, confirmOwnSessions, markStale, withTeamRegistration } = await import("./team-registration.js");
      const { parseDuration } = await import("./hook-commands.js");
      const staleAfterMs = parseDuration(single(flags, "stale-after"), "stale-after");
      const project = single(flags, "project");
      const filter = project !== undefined ? { project } : {};
      // With BULKHEAD_STORE set: the team's sessions on every host, and who holds each.
      const team = await withTeamRegistration(async (registration) => {
        if (!registration) return undefined;
        // This host is alive: it confirms its own entries first. Without its engine it cannot, and lists anyway.
        const local = await listSessions().catch(() => undefined);
        if (local) await confirmOwnSessions(registration, local);
        return markStale(await listTeamSessions(registration, filter), staleAfterMs === undefined ? {} : { staleAfterMs });
      });
      if (team) {
        const now = Date.now();
        return ok(
          team,
          team.map(
            (entry) =>
              `${entry.id}  ${entry.project ?? "-"}  ${entry.state === "stale" ? `stale (running, last confirmed by its host ${ago(now - Date.parse(entry.confirmedAt))})` : entry.state}  host ${entry.host}  ${entry.engine}`,
          ),
        );
      }
      const sessions = await listSessions(filter);
      return ok(
        sessions,
        sessions.map((entry) => `${entry.id}  ${entry.project}  ${entry.container}  ${entry.createdAt}`),
      );
    },
  },
  "session heartbeat": {
    usage: "bulkhead session heartbeat",
    example: "bulkhead session heartbeat --json",
    async run() {
      const { listSessions } = await import("@bulkhead/sandbox");
      const { confirmOwnSessions, withTeamRegistration } = await import("./team-registration.js");
      // For a timer on each host (cron, systemd): its entries stay confirmed while it lives, and go stale when it dies.
      const beat = await withTeamRegistration(async (registration) => {
        if (!registration) throw new UsageError("BULKHEAD_STORE is not set: there is no team registry to confirm this host's sessions in");
        return { host: registration.host, ...(await confirmOwnSessions(registration, await listSessions())) };
      });
      return ok(beat, [
        `host ${beat.host}: confirmed ${beat.confirmed.length} session(s)${beat.unconfirmed.length > 0 ? `; not under this BULKHEAD_HOME, left as they are: ${beat.unconfirmed.join(", ")}` : ""}`,
      ]);
    },
  },
  "session status": {
    usage: "bulkhead session status <id>",
    example: "bulkhead session status s123 --json",
    async run([id]) {
      const { getSession } = await import("@bulkhead/sandbox");
      const session = getSession(id!);
      const security = await session.inspectSecurity().catch(() => undefined);
      return ok({ state: session.state, security }, [
        `${id}: ${session.state.repos.length} repos, ${session.jobs().length} jobs, container ${security ? "present" : "missing"}`,
      ]);
    },
  },
  "session stop": {
    usage: "bulkhead session stop <id>",
    example: "bulkhead session stop s123",
    async run([id]) {
      const { getSession } = await import("@bulkhead/sandbox");
      const report = await getSession(id!).stop();
      return ok({ stopped: id, ...report }, [`stopped ${id} (container ${report.container}); kept its workspace ${report.kept.workspace}`]);
    },
  },
  "session rm": {
    usage: "bulkhead session rm <id> [--force]",
    example: "bulkhead session rm s123",
    async run([id], flags) {
      const { getSession } = await import("@bulkhead/sandbox");
      const { withTeamRegistration } = await import("./team-registration.js");
      const report = await withTeamRegistration((registration) =>
        getSession(id!).remove({ force: flags.force === true, ...(registration ? { registration } : {}) }),
      );
      const refs = report.kept.refs;
      return ok({ removed: id, ...report }, [
        `removed ${id} (container ${report.container}, ${report.removedDir})`,
        ...(refs.length > 0 ? [`kept ${refs.length} fetched ref(s): ${refs.map((ref) => `${ref.repo}:${ref.ref}`).join(", ")}`] : []),
      ]);
    },
  },
  "session gc": {
    usage: "bulkhead session gc [--dry-run] [--missing]",
    example: "bulkhead session gc --dry-run",
    async run(_positionals, flags) {
      const { gc } = await import("@bulkhead/sandbox");
      const result = await gc({ dryRun: flags["dry-run"] === true, missing: flags.missing === true });
      return ok(result, [
        `containers: ${result.removedContainers.join(", ") || "none"}; sessions: ${result.removedSessions.join(", ") || "none"}`,
      ]);
    },
  },
  "session reconcile": {
    usage: "bulkhead session reconcile [--start]",
    example: "bulkhead session reconcile --start --json",
    async run(_positionals, flags) {
      const { getSession, reconcile } = await import("@bulkhead/sandbox");
      const found = await reconcile();
      // After an engine restart or a host reboot: bring back what was stopped under it.
      const started: string[] = [];
      if (flags.start === true) {
        for (const id of found.stopped) {
          await getSession(id).start();
          started.push(id);
        }
      }
      const list = (ids: string[]) => ids.join(", ") || "none";
      return ok({ ...found, started }, [
        `stopped: ${list(found.stopped)}; started: ${list(started)}`,
        `orphan containers: ${list(found.orphanContainers)}; missing containers: ${list(found.missingContainers)}; config drift: ${list(found.configDrift)}`,
      ]);
    },
  },
  inject: {
    usage:
      "bulkhead inject <session> [--follow] [--raw] [--agent claude-code|codex --prompt <text> [--resume <job>] [--token <t>]] [-- <command>...]",
    example: "bulkhead inject s123 --follow --agent claude-code --prompt 'Run the tests and fix what fails'",
    async run([id, ...command], flags, io) {
      const { getSession } = await import("@bulkhead/sandbox");
      const { gatewayToken, printCondensed, providerNamed } = await import("./agent-flags.js");
      const session = getSession(id!);
      // --- agents (agent-flags.ts): a provider runs the agent, and --follow prints its events ---
      const agentName = single(flags, "agent");
      const provider = agentName !== undefined ? providerNamed(agentName) : undefined;
      let job;
      if (provider) {
        const prompt = single(flags, "prompt");
        if (prompt === undefined) throw new UsageError("--prompt: an agent needs a prompt: pass --prompt <text>");
        const { startAgent } = await import("@bulkhead/agents");
        const resume = single(flags, "resume");
        const run = await startAgent(session, {
          provider,
          prompt,
          gateway: { token: gatewayToken(flags.token) },
          ...(resume !== undefined ? { resume } : {}),
        });
        job = run.job;
      } else job = await session.inject(command.length > 0 ? { command } : {});
      if (!flags.follow) return ok({ job: job.id }, [job.id]);
      io.progress(`job ${job.id} started`);
      if (flags.raw === true) for await (const chunk of job.logs({ follow: true })) io.stream(chunk);
      else await printCondensed(job.logs({ follow: true }), provider ?? providerNamed("claude-code"), io.stream);
      // --- end agents ---
      const { exitCode } = await job.wait();
      io.progress(`job ${job.id} exited with ${exitCode}`);
      return { code: exitCode === 0 ? 0 : 1, data: { job: job.id, exitCode }, text: [] };
    },
  },
  shell: {
    usage: "bulkhead shell <session> [-- <command>...]",
    example: "bulkhead shell s123",
    async run([id, ...command]) {
      const { getSession, openShell } = await import("@bulkhead/sandbox");
      // An interactive TTY in the live session, as its user: a person steps in.
      const { exitCode } = await openShell(getSession(id!), command.length > 0 ? { command } : {});
      return { code: exitCode === 0 ? 0 : 1, data: { session: id, exitCode }, text: [] };
    },
  },
  "code fetch": {
    usage: "bulkhead code fetch <session> [--strict]",
    example: "bulkhead code fetch s123 --strict --json",
    async run([id], flags) {
      const { getSession } = await import("@bulkhead/sandbox");
      const results = await getSession(id!).fetchCode({ strict: flags.strict === true });
      return {
        code: results.some((result) => result.status === "failed" || result.status === "diverged") ? 1 : 0,
        data: results,
        text: results.map((result) => `${result.repo} ${result.branch}: ${result.status}${result.ref ? ` → ${result.ref}` : ""}`),
      };
    },
  },
};

/** The memory verbs live in their own module (loaded when a memory verb runs): one line in the overview. */
const MEMORY_OVERVIEW = "bulkhead memory propose|list|accept|drop|select ... (see bulkhead memory --help)";
const loadMemory = async (): Promise<Record<string, Command>> =>
  (await import("./memory-commands.js")).memoryCommands as Record<string, Command>;

function help(): string {
  return [
    "bulkhead: primitives for running coding agents across repositories",
    "",
    "Commands:",
    ...Object.values(commands).map((command) => `  ${command.usage}`),
    `  ${MEMORY_OVERVIEW}`,
    "",
    "Every command takes --json (one JSON document on stdout) and --help.",
    "Exit codes: 0 ok, 1 wrong usage or failed, 2 refused (by a limit, a budget, the guard, a claim or a person's decision).",
  ].join("\n");
}

/** Error codes that mean "refused": the tool worked and said no (exit 2), not a failure (exit 1). */
const REFUSALS = new Set([
  "SCOPE_LIMIT",
  "BUDGET_EXCEEDED",
  "MEMORY_REFUSED",
  "CLAIM_REFUSED",
  "PROPOSAL_ALREADY_DECIDED",
  "HANDOVER_CONSUMED",
  "LEAD_FENCED",
]);

/** Every option any verb takes; each verb accepts only those its usage line names. */
const OPTIONS = {
  json: { type: "boolean" },
  help: { type: "boolean" },
  version: { type: "boolean" },
  repo: { type: "string", multiple: true },
  issue: { type: "string", multiple: true },
  worker: { type: "string", multiple: true },
  message: { type: "string", multiple: true },
  out: { type: "string", multiple: true },
  project: { type: "string", multiple: true },
  spec: { type: "string", multiple: true },
  task: { type: "string", multiple: true },
  token: { type: "string", multiple: true },
  base: { type: "string", multiple: true },
  gate: { type: "string", multiple: true },
  next: { type: "string", multiple: true },
  "max-per-wave": { type: "string", multiple: true },
  force: { type: "boolean" },
  follow: { type: "boolean" },
  strict: { type: "boolean" },
  "dry-run": { type: "boolean" },
  missing: { type: "boolean" },
  start: { type: "boolean" },
  // bulkhead session list
  "stale-after": { type: "string", multiple: true },
  // bulkhead lead …
  manifest: { type: "string", multiple: true },
  remote: { type: "string", multiple: true },
  fixup: { type: "boolean" },
  id: { type: "string", multiple: true },
  // bulkhead hook …
  ttl: { type: "string", multiple: true },
  "depends-on": { type: "string", multiple: true },
  payload: { type: "string", multiple: true },
  final: { type: "boolean" },
  // bulkhead proposals …
  store: { type: "string", multiple: true },
  hook: { type: "string", multiple: true },
  // bulkhead handover … / continue
  lenient: { type: "boolean" },
  ref: { type: "string", multiple: true },
  check: { type: "string", multiple: true },
  extend: { type: "string", multiple: true },
  "approved-by": { type: "string", multiple: true },
  // bulkhead memory …
  dir: { type: "string", multiple: true },
  by: { type: "string", multiple: true },
  kind: { type: "string", multiple: true },
  title: { type: "string", multiple: true },
  applies: { type: "string", multiple: true },
  status: { type: "string", multiple: true },
  expires: { type: "string", multiple: true },
  reason: { type: "string", multiple: true },
  "memory-tokens": { type: "string", multiple: true },
  instructions: { type: "string", multiple: true },
  record: { type: "boolean" },
  agent: { type: "string", multiple: true },
  prompt: { type: "string", multiple: true },
  resume: { type: "string", multiple: true },
  gateway: { type: "string", multiple: true },
  raw: { type: "boolean" },
} as const;

/** Flags that may be given more than once; every other string flag is kept as one value (given twice is wrong usage). */
const REPEATABLE = new Set(["repo", "base", "gate", "next", "manifest", "depends-on", "applies", "ref", "extend"]);

/** Runs the CLI with `argv` (without `node` and the script) and returns the exit code. */
export async function main(
  argv: readonly string[],
  { stdout = (text) => process.stdout.write(text), stderr = (text) => process.stderr.write(text), progress }: MainOptions = {},
): Promise<number> {
  const jsonRequested = argv.includes("--json");
  const usageError = (message: string): number => {
    if (jsonRequested) stdout(`${JSON.stringify({ error: { name: "UsageError", code: "USAGE", message } })}\n`);
    else stderr(`${message}\n`);
    return 1;
  };
  const separator = argv.indexOf("--");
  const passthrough = separator === -1 ? [] : argv.slice(separator + 1);
  let parsed: { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: separator === -1 ? [...argv] : argv.slice(0, separator), allowPositionals: true, options: OPTIONS });
  } catch (error) {
    return usageError(`${(error as Error).message.replace(/\. To specify a positional argument.*$/s, "")}: see bulkhead --help`);
  }
  const { positionals } = parsed;
  // One value for a flag that takes one; repeatable flags stay lists.
  const values: Flags = {};
  for (const [key, value] of Object.entries(parsed.values)) {
    if (Array.isArray(value) && !REPEATABLE.has(key)) {
      if (value.length > 1) return usageError(`--${key} was given ${value.length} times: give it once`);
      values[key] = value[0];
    } else values[key] = value;
  }
  const json = values.json === true;
  if (values.version) return (stdout(json ? `${JSON.stringify({ version: VERSION })}\n` : `${VERSION}\n`), 0);

  let table: Record<string, Command> = commands;
  if (positionals[0] === "memory") table = await loadMemory();
  const name = [`${positionals[0]} ${positionals[1]}`, positionals[0]].find((candidate) => candidate && candidate in table);
  if (!name) {
    // `bulkhead` or `bulkhead --help`: the overview.
    if (positionals.length === 0)
      return (
        stdout(
          json
            ? `${JSON.stringify({ usage: [...Object.values(commands).map((command) => command.usage), MEMORY_OVERVIEW] })}\n`
            : `${help()}\n`,
        ),
        0
      );
    // A group (`bulkhead lead`, `bulkhead scope --help`): its verbs; asked for, exit 0, else it is wrong usage.
    const group = Object.values(table).filter((command) => command.usage.startsWith(`bulkhead ${positionals[0]} `));
    if (group.length > 0 && positionals.length <= 2) {
      const verbs = group.map((command) => `  ${command.usage}`).join("\n");
      if (values.help)
        return (stdout(json ? `${JSON.stringify({ usage: group.map((command) => command.usage) })}\n` : `Commands:\n${verbs}\n`), 0);
      const given = positionals[1] === undefined ? "" : ` "${positionals[1]}"`;
      if (json)
        return usageError(
          `bulkhead ${positionals[0]} needs a verb${given ? `, not${given}` : ""}: ${group.map((command) => command.usage.split(" ")[2]).join(", ")}`,
        );
      stderr(`bulkhead ${positionals[0]} needs a verb${given ? `, not${given}` : ""}. Commands:\n${verbs}\n`);
      return 1;
    }
    const { didYouMean } = await import("@bulkhead/core");
    const suggestion = didYouMean(positionals[0]!, [...new Set([...Object.keys(commands).map((key) => key.split(" ")[0]!), "memory"])]);
    return usageError(`unknown command "${positionals[0]}"${suggestion ? `: did you mean "${suggestion}"?` : ""} See bulkhead --help`);
  }
  const command = table[name]!;
  if (values.help)
    return (
      stdout(
        json
          ? `${JSON.stringify({ usage: command.usage, example: command.example })}\n`
          : `Usage: ${command.usage}\n\nExample:\n  ${command.example}\n`,
      ),
      0
    );
  // What the usage line requires (outside [brackets] and before " -- ") must be there; nothing it does not name may be.
  const required = requirements(command.usage, name);
  const unknown = Object.keys(values).filter((flag) => !["json", "help", "version"].includes(flag) && !required.known.has(flag));
  if (unknown.length > 0)
    return usageError(`bulkhead ${name} takes no ${unknown.map((flag) => `--${flag}`).join(", ")}. Usage: ${command.usage}`);
  const args = [...positionals.slice(name.split(" ").length), ...passthrough];
  const given =
    positionals.length - name.split(" ").length + (passthrough.length > 0 && !command.usage.includes(" -- ") ? passthrough.length : 0);
  const missingFlags = required.flags.filter((flag) => values[flag] === undefined);
  if (given < required.positionals || missingFlags.length > 0) {
    const names = [
      ...command.usage
        .replace(/\[[^\]]*\](\.\.\.)?/g, "")
        .replace(/--[a-z-]+ <[^>]+>/g, "")
        .matchAll(/<[^>]+>/g),
    ].map((match) => match[0]);
    const missing = [...names.slice(given, required.positionals), ...missingFlags.map((flag) => `--${flag}`)];
    return usageError(`missing ${missing.join(", ")}. Usage: ${command.usage}`);
  }
  if (given > required.maxPositionals) {
    const extra = positionals.slice(name.split(" ").length + required.maxPositionals);
    return usageError(`unexpected argument(s) ${extra.map((value) => `"${value}"`).join(" ")}. Usage: ${command.usage}`);
  }
  const io: Io = {
    progress: json
      ? () => undefined
      : (progress ?? (process.stderr.isTTY ? (line) => stderr(`\x1b[2m› ${line}\x1b[22m\n`) : () => undefined)),
    stream: json ? () => undefined : stdout,
  };
  try {
    const outcome: Outcome = await command.run(args, values, io);
    if (json) stdout(`${JSON.stringify(outcome.data)}\n`);
    else if (outcome.text.length > 0) (outcome.code === 0 ? stdout : stderr)(`${outcome.text.join("\n")}\n`);
    return outcome.code;
  } catch (error) {
    if (error instanceof UsageError) return usageError(error.message);
    const { BulkheadError } = await import("@bulkhead/core");
    const body = BulkheadError.isInstance(error)
      ? error.toJSON()
      : { name: (error as Error).name ?? "Error", message: (error as Error).message ?? String(error) };
    if (json) stdout(`${JSON.stringify({ error: body })}\n`);
    else stderr(`${body.message}\n`);
    // Refused is not a failure of the tool: scripts tell the two apart.
    return "code" in body && typeof body.code === "string" && REFUSALS.has(body.code) ? 2 : 1;
  }
}

import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { basename } from "node:path";
import { parseArgs } from "node:util";
import { createFileLedger, createTokenCounter, restoreTracker } from "@bulkhead/budget";
import { BulkheadError, InvalidArgumentError, loadTaskSpec, resolveScope } from "@bulkhead/core";
import { createCommitLead, createWorkHook, planWork } from "@bulkhead/git-lead";
import {
  assessCompletion,
  handoverFromJson,
  handoverToJson,
  parseHandover,
  renderContinuationPrompt,
  renderHandover,
} from "@bulkhead/handover";
import { startAgent } from "@bulkhead/agents";
import { buildImage, createSession, gc, getSession, listSessions, loadProject, openShell, reconcile } from "@bulkhead/sandbox";
import { gatewayToken, printCondensed, providerNamed } from "./agent-flags.js";
import { dispatch, finish, harvestSession } from "./composites.js";
import { memoryCommands } from "./memory-commands.js";

export interface MainOptions {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  /**
   * Where long steps (image bake, clones, gates, jobs) report as they go. Never called with
   * `--json`. @default one dim line per step on stderr when stderr is a TTY, else nothing
   */
  progress?: (line: string) => void;
}

/** What a command produced: an exit code (0 ok, 1 failure, 2 refused by a limit or a guard), data for --json, lines for people. */
interface Outcome {
  code: 0 | 1 | 2;
  data: unknown;
  text: string[];
}

/** What a command may do while it runs: report a step, or stream output (`inject --follow`). */
interface Io {
  progress(line: string): void;
  /** Output that belongs on stdout as it arrives; swallowed with `--json`. */
  stream(chunk: string): void;
}

interface Command {
  usage: string;
  example: string;
  run(positionals: string[], flags: Record<string, string | boolean | (string | boolean)[] | undefined>, io: Io): Promise<Outcome>;
}

const ok = (data: unknown, text: string[]): Outcome => ({ code: 0, data, text });

/** The arguments and flags a usage line requires: what is outside [brackets] and before " -- ". */
function requirements(usage: string, name: string): { positionals: number; flags: string[] } {
  const rest = usage
    .slice(`bulkhead ${name}`.length)
    .split(" -- ")[0]!
    .replace(/\[[^\]]*\](\.\.\.)?/g, "");
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
  return { positionals, flags };
}

function repoMap(values: string[] | undefined): Record<string, string> {
  const repos: Record<string, string> = {};
  for (const value of values ?? []) {
    // Split at the first "=" only: a directory may contain one.
    const at = value.indexOf("=");
    const [name, dir] = at === -1 ? [value, ""] : [value.slice(0, at), value.slice(at + 1)];
    if (!name || !dir) throw new InvalidArgumentError("argument", `expected name=value, got "${value}"`);
    repos[name] = dir;
  }
  return repos;
}

async function scopeOf(specPath: string, repos: Record<string, string>) {
  const spec = await loadTaskSpec(specPath);
  using counter = createTokenCounter({ encoding: "o200k_base" });
  return { spec, scope: await resolveScope(spec, { repos, counter }) };
}

/** The one planner behind `plan waves` and `plan shared`: each spec's scope resolved once. */
async function planSpecs(specs: string[], flags: Record<string, unknown>) {
  const repos = repoMap(flags.repo as string[]);
  const maxPerWave = flags["max-per-wave"] === undefined ? Infinity : Number(flags["max-per-wave"]);
  if (!(Number.isInteger(maxPerWave) || maxPerWave === Infinity) || maxPerWave < 1)
    throw new InvalidArgumentError(
      "--max-per-wave",
      `expected a whole number of tasks, at least 1, got "${String(flags["max-per-wave"])}"`,
    );
  const tasks = await Promise.all(
    specs.map(async (path) => {
      const spec = await loadTaskSpec(path);
      return { id: spec.id ?? basename(path).replace(/\.(ya?ml|json)$/, ""), dependsOn: spec.dependsOn, spec };
    }),
  );
  return planWork(tasks, { repos, maxPerWave });
}

const commands: Record<string, Command> = {
  dispatch: {
    usage: "bulkhead dispatch <project.yaml> --spec <handover.yaml> [--agent claude-code|codex --gateway <socket> [--token <t>]]",
    example: "bulkhead dispatch bulkhead.yaml --spec handover.yaml --json",
    async run([project], flags, io) {
      const lines: string[] = [];
      const result = await dispatch(project!, String(flags.spec), {
        log: (line) => lines.push(line),
        progress: io.progress,
        // --- agents: a built-in provider, reaching its model only through the gateway's socket ---
        ...(typeof flags.agent === "string"
          ? {
              agent: {
                provider: providerNamed(flags.agent),
                ...(typeof flags.gateway === "string" ? { socketPath: flags.gateway } : {}),
                token: gatewayToken(flags.token),
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
      const lines: string[] = [];
      const result = await harvestSession(id!, {
        ...(typeof flags.out === "string" ? { out: flags.out } : {}),
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
      const lines: string[] = [];
      const result = await finish(id!, {
        ...(typeof flags.out === "string" ? { out: flags.out } : {}),
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
      const { spec: parsed, scope } = await scopeOf(spec!, repoMap(flags.repo as string[]));
      const data = {
        files: scope.files,
        totals: scope.totals,
        limits: { maxFiles: parsed.contextScope.maxFiles, maxTokens: parsed.contextScope.maxTokens },
        estimated: scope.estimated,
        violations: scope.violations,
        skipped: scope.skipped,
        refused: scope.refused,
        links: scope.links,
      };
      const text = [
        ...scope.files.map((file) => `${file.repo}/${file.path}  ${file.tokens} tokens`),
        `${scope.totals.files} files, ${scope.totals.tokens} tokens (limits: ${parsed.contextScope.maxFiles} files, ${parsed.contextScope.maxTokens} tokens)`,
        ...scope.violations.map((violation) => violation.message),
      ];
      return { code: scope.violations.length > 0 ? 2 : 0, data, text };
    },
  },
  "budget check": {
    usage: "bulkhead budget check <spec> --repo <name>=<dir> ... [--json]",
    example: "bulkhead budget check handover.yaml --repo backend-api=../backend-api",
    async run([specPath], flags) {
      const { spec, scope } = await scopeOf(specPath!, repoMap(flags.repo as string[]));
      // The same check dispatch makes: the context-read budget and the session total both hold it.
      const contextRead = spec.budgets.contextRead ?? spec.contextScope.maxTokens;
      const sessionTotal = spec.budgets.sessionTotal;
      const limit = Math.min(contextRead, sessionTotal ?? Infinity);
      const allowed = scope.totals.tokens <= limit && scope.violations.length === 0;
      const data = { allowed, tokens: scope.totals.tokens, contextRead, sessionTotal, violations: scope.violations };
      return {
        code: allowed ? 0 : 2,
        data,
        text: [
          `context: ${scope.totals.tokens} tokens of ${limit} allowed: ${allowed ? "ok" : "over budget or over the scope's limits: narrow the scope"}`,
        ],
      };
    },
  },
  "budget report": {
    usage: "bulkhead budget report <ledger.jsonl> [--task <id>]",
    example: "bulkhead budget report .bulkhead/ledger.jsonl --json",
    async run([path], flags) {
      if (!existsSync(path!))
        throw new InvalidArgumentError("ledger", `${path} does not exist: pass the ledger file a budget or tracker wrote`);
      const ledger = createFileLedger(path!);
      const { events, tornTail, corruptLines } = await ledger.read();
      const tasks = [...new Set(events.flatMap((event) => (event.type === "usage" ? [event.task] : [])))].filter(
        (task) => !flags.task || task === flags.task,
      );
      const reports = await Promise.all(tasks.map(async (taskId) => (await restoreTracker({ taskId, ledger })).report()));
      await ledger.close();
      const text = reports.map(
        (report) =>
          `${report.taskId}: ${report.totalTokens} tokens (context ${report.contextReadTokens}, generation ${report.generationTokens}, tools ${report.toolCallTokens})${report.usd === undefined ? "" : `, $${report.usd.toFixed(4)}`}`,
      );
      if (tornTail || corruptLines > 0) text.push(`skipped: ${corruptLines} corrupt line(s)${tornTail ? " and a torn last line" : ""}`);
      return ok({ reports, tornTail, corruptLines }, text.length > 0 ? text : ["no usage recorded"]);
    },
  },
  "hook ready": {
    usage: "bulkhead hook ready <hook-dir>",
    example: "bulkhead hook ready .bulkhead/hook --json",
    async run([dir]) {
      const ready = await createWorkHook({ dir: dir! }).ready();
      return ok(ready, ready.length === 0 ? ["nothing is ready"] : ready.map((task) => task.id));
    },
  },
  "hook claim": {
    usage: "bulkhead hook claim <hook-dir> <task> --worker <name>",
    example: "bulkhead hook claim .bulkhead/hook types --worker agent-1 --json",
    async run([dir, task], flags) {
      const claim = await createWorkHook({ dir: dir! }).claim(task!, String(flags.worker ?? ""));
      return ok(claim, [
        `${claim.taskId} claimed by ${claim.worker} until ${new Date(claim.expiresAt).toISOString()} (token ${claim.token})`,
      ]);
    },
  },
  "hook complete": {
    usage: "bulkhead hook complete <hook-dir> <task> --token <token>",
    example: "bulkhead hook complete .bulkhead/hook types --token 0123abcd",
    async run([dir, task], flags) {
      // The hook checks the token (and the claim's own expiry) against the claim it holds.
      await createWorkHook({ dir: dir! }).complete({
        taskId: task!,
        worker: "this token",
        token: String(flags.token ?? ""),
        expiresAt: Number.MAX_SAFE_INTEGER,
      });
      return ok({ completed: task }, [`completed ${task}`]);
    },
  },
  continue: {
    usage: "bulkhead continue <spec> --repo <name>=<dir> ... --base <name>=<sha> ...",
    example: "bulkhead continue handover.yaml --repo backend-api=. --base backend-api=abc123",
    async run([specPath], flags) {
      const spec = await loadTaskSpec(specPath!);
      const expected = spec.expectedFiles.map((file) => ({ repo: file.repo, path: file.path, change: file.change ?? "modify" }));
      const assessment = await assessCompletion({
        expected,
        repos: repoMap(flags.repo as string[]),
        base: repoMap(flags.base as string[]),
      });
      const prompt = renderContinuationPrompt({ assessment, task: spec });
      return ok({ assessment, prompt }, [prompt.trimEnd()]);
    },
  },
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
      const markdown = renderHandover(handoverFromJson(await readFile(path!, "utf8"), { source: path! }));
      if (typeof flags.out === "string") await writeFile(flags.out, markdown);
      return ok({ markdown }, [markdown]);
    },
  },
  "handover parse": {
    usage: "bulkhead handover parse <handover.md>",
    example: "bulkhead handover parse handover.md > handover.json",
    async run([path]) {
      const document = parseHandover(await readFile(path!, "utf8"), { source: path! });
      return ok(document, [handoverToJson(document).trimEnd()]);
    },
  },
  "handover check": {
    usage: "bulkhead handover check <handover.md>",
    example: "bulkhead handover check handover.md",
    async run([path]) {
      const document = parseHandover(await readFile(path!, "utf8"), { source: path! });
      return ok({ valid: true, status: document.status, consumed: document.consumed ?? null }, [
        `${path}: valid, ${document.status}${document.consumed ? `, consumed by ${document.consumed.by}` : ""}`,
      ]);
    },
  },
  "lead submit": {
    usage: "bulkhead lead submit <repo-dir> --issue <id> --worker <name> --message <text> [--gate <shell command>]... <file>...",
    example:
      "bulkhead lead submit . --issue RATE-1 --worker agent-1 --message 'Add rate limiting' --gate 'npm test' src/middleware/rateLimit.ts",
    async run([dir, ...files], flags, io) {
      // Each --gate runs with `sh -c` in the repo; the lead commits only when every gate passes.
      const gates = ((flags.gate as string[] | undefined) ?? []).map((command) => ({ name: command, command: ["sh", "-c", command] }));
      const lead = await createCommitLead({ dir: dir!, author: { name: "bulkhead lead", email: "lead@bulkhead.local" }, gates });
      lead.on("gate-end", ({ gate }) => io.progress(`gate ${gate.name}: ${gate.ok ? "passed" : "failed"} in ${gate.durationMs} ms`));
      if (gates.length > 0) io.progress(`running ${gates.length} gate(s)`);
      try {
        const result = await lead.submit({
          issueId: String(flags.issue),
          worker: String(flags.worker),
          message: String(flags.message),
          files,
        });
        return {
          code: result.status === "committed" ? 0 : 2,
          data: result,
          text: [result.status === "committed" ? `committed ${result.sha}` : `${result.status}: ${result.reason}`],
        };
      } finally {
        await lead.close();
      }
    },
  },
  "lead status": {
    usage: "bulkhead lead status <repo-dir>",
    example: "bulkhead lead status . --json",
    async run([dir]) {
      const status = await (
        await createCommitLead({ dir: dir!, author: { name: "bulkhead lead", email: "lead@bulkhead.local" } })
      ).status();
      return ok(status, [
        `queue: ${status.queue.length}, in flight: ${status.inFlight ?? "none"}, held: ${status.held.length}`,
        ...status.recentCommits.map((commit) => `${commit.sha.slice(0, 12)} ${commit.issueId}`),
      ]);
    },
  },
  "lead recover": {
    usage: "bulkhead lead recover <repo-dir>",
    example: "bulkhead lead recover .",
    async run([dir]) {
      const outcome = await (
        await createCommitLead({ dir: dir!, author: { name: "bulkhead lead", email: "lead@bulkhead.local" } })
      ).recover();
      return ok(outcome, [`finished ${outcome.finished.length}, rolled back ${outcome.rolledBack.length}`]);
    },
  },
  build: {
    usage: "bulkhead build <project.yaml> [--force]",
    example: "bulkhead build bulkhead.yaml",
    async run([path], flags, io) {
      io.progress("baking the image");
      const result = await buildImage(loadProject(path!), { force: flags.force === true, onProgress: io.progress });
      return ok(result, [`${result.tag}${result.cached ? " (cached)" : ""}`]);
    },
  },
  "session start": {
    usage: "bulkhead session start <project.yaml>",
    example: "bulkhead session start bulkhead.yaml --json",
    async run([path], _flags, io) {
      const project = loadProject(path!);
      io.progress(`cloning ${project.repos.length} repo(s) and starting the container`);
      const session = await createSession(project);
      return ok({ id: session.id, workspace: session.state.workspace, repos: session.state.repos }, [session.id]);
    },
  },
  "session list": {
    usage: "bulkhead session list [--project <name>]",
    example: "bulkhead session list --json",
    async run(_positionals, flags) {
      const sessions = await listSessions(typeof flags.project === "string" ? { project: flags.project } : {});
      return ok(
        sessions,
        sessions.map((entry) => `${entry.id}  ${entry.project}  ${entry.container}  ${entry.createdAt}`),
      );
    },
  },
  "session status": {
    usage: "bulkhead session status <id>",
    example: "bulkhead session status s123 --json",
    async run([id]) {
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
      await getSession(id!).stop();
      return ok({ stopped: id }, [`stopped ${id}`]);
    },
  },
  "session rm": {
    usage: "bulkhead session rm <id> [--force]",
    example: "bulkhead session rm s123",
    async run([id], flags) {
      await getSession(id!).remove({ force: flags.force === true });
      return ok({ removed: id }, [`removed ${id}`]);
    },
  },
  "session gc": {
    usage: "bulkhead session gc [--dry-run] [--missing]",
    example: "bulkhead session gc --dry-run",
    async run(_positionals, flags) {
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
      const session = getSession(id!);
      // --- agents (agent-flags.ts): a provider runs the agent, and --follow prints its events ---
      const provider = typeof flags.agent === "string" ? providerNamed(flags.agent) : undefined;
      let job;
      if (provider) {
        if (typeof flags.prompt !== "string") throw new InvalidArgumentError("--prompt", "an agent needs a prompt: pass --prompt <text>");
        const run = await startAgent(session, {
          provider,
          prompt: flags.prompt,
          gateway: { token: gatewayToken(flags.token) },
          ...(typeof flags.resume === "string" ? { resume: flags.resume } : {}),
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
      // An interactive TTY in the live session, as its user: a person steps in.
      const { exitCode } = await openShell(getSession(id!), command.length > 0 ? { command } : {});
      return { code: exitCode === 0 ? 0 : 1, data: { session: id, exitCode }, text: [] };
    },
  },
  "code fetch": {
    usage: "bulkhead code fetch <session> [--strict]",
    example: "bulkhead code fetch s123 --strict --json",
    async run([id], flags) {
      const results = await getSession(id!).fetchCode({ strict: flags.strict === true });
      return {
        code: results.some((result) => result.status === "failed" || result.status === "diverged") ? 1 : 0,
        data: results,
        text: results.map((result) => `${result.repo} ${result.branch}: ${result.status}${result.ref ? ` → ${result.ref}` : ""}`),
      };
    },
  },
  ...memoryCommands,
};

function help(): string {
  return [
    "bulkhead: primitives for running coding agents across repositories",
    "",
    "Commands:",
    ...Object.values(commands).map((command) => `  ${command.usage}`),
    "",
    "Every command takes --json (one JSON document on stdout) and --help.",
    "Exit codes: 0 ok, 1 failure, 2 refused by a limit or a guard.",
  ].join("\n");
}

/** Runs the CLI with `argv` (without `node` and the script) and returns the exit code. */
export async function main(
  argv: readonly string[],
  { stdout = (text) => process.stdout.write(text), stderr = (text) => process.stderr.write(text), progress }: MainOptions = {},
): Promise<number> {
  const separator = argv.indexOf("--");
  const passthrough = separator === -1 ? [] : argv.slice(separator + 1);
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: separator === -1 ? [...argv] : argv.slice(0, separator),
      allowPositionals: true,
      options: {
        json: { type: "boolean" },
        help: { type: "boolean" },
        version: { type: "boolean" },
        repo: { type: "string", multiple: true },
        issue: { type: "string" },
        worker: { type: "string" },
        message: { type: "string" },
        out: { type: "string" },
        project: { type: "string" },
        spec: { type: "string" },
        task: { type: "string" },
        token: { type: "string" },
        base: { type: "string", multiple: true },
        gate: { type: "string", multiple: true },
        next: { type: "string", multiple: true },
        "max-per-wave": { type: "string" },
        force: { type: "boolean" },
        follow: { type: "boolean" },
        strict: { type: "boolean" },
        "dry-run": { type: "boolean" },
        missing: { type: "boolean" },
        start: { type: "boolean" },
        // bulkhead memory …
        dir: { type: "string" },
        by: { type: "string" },
        kind: { type: "string" },
        title: { type: "string" },
        applies: { type: "string", multiple: true },
        status: { type: "string" },
        expires: { type: "string" },
        reason: { type: "string" },
        "memory-tokens": { type: "string" },
        instructions: { type: "string" },
        record: { type: "boolean" },
        agent: { type: "string" },
        prompt: { type: "string" },
        resume: { type: "string" },
        gateway: { type: "string" },
        raw: { type: "boolean" },
      },
    });
  } catch (error) {
    // With --json, even a usage error is one JSON document on stdout.
    const message = `${(error as Error).message}: see bulkhead --help`;
    if (argv.includes("--json")) stdout(`${JSON.stringify({ error: { name: "UsageError", code: "USAGE", message } })}\n`);
    else stderr(`${message}\n`);
    return 1;
  }
  const { values, positionals } = parsed;
  const json = values.json === true;
  const usageError = (message: string): number => {
    if (json) stdout(`${JSON.stringify({ error: { name: "UsageError", code: "USAGE", message } })}\n`);
    else stderr(`${message}\n`);
    return 1;
  };
  if (values.version) return (stdout(json ? `${JSON.stringify({ version: "0.1.0" })}\n` : "0.1.0\n"), 0);
  const name = [`${positionals[0]} ${positionals[1]}`, positionals[0]].find((candidate) => candidate && candidate in commands);
  if (!name) {
    // `bulkhead --help`, or help on a group such as `bulkhead scope --help`: the overview.
    if (positionals.length === 0 || (values.help && Object.keys(commands).some((key) => key.startsWith(`${positionals[0]} `))))
      return (stdout(`${help()}\n`), 0);
    return json ? usageError(`unknown command "${positionals.join(" ")}": see bulkhead --help`) : (stderr(`${help()}\n`), 1);
  }
  const command = commands[name]!;
  if (values.help) return (stdout(`Usage: ${command.usage}\n\nExample:\n  ${command.example}\n`), 0);
  // What the usage line requires (outside [brackets] and before " -- ") must be there.
  const required = requirements(command.usage, name);
  const given =
    positionals.length - name.split(" ").length + (passthrough.length > 0 && !command.usage.includes(" -- ") ? passthrough.length : 0);
  const missingFlags = required.flags.filter((flag) => values[flag as keyof typeof values] === undefined);
  if (given < required.positionals || missingFlags.length > 0) {
    const missing = [
      ...(given < required.positionals ? [`${required.positionals - given} argument(s)`] : []),
      ...missingFlags.map((flag) => `--${flag}`),
    ];
    return usageError(`missing ${missing.join(", ")}. Usage: ${command.usage}`);
  }
  const io: Io = {
    progress: json
      ? () => undefined
      : (progress ?? (process.stderr.isTTY ? (line) => stderr(`\x1b[2m› ${line}\x1b[22m\n`) : () => undefined)),
    stream: json ? () => undefined : stdout,
  };
  try {
    const outcome = await command.run([...positionals.slice(name.split(" ").length), ...passthrough], values, io);
    if (json) stdout(`${JSON.stringify(outcome.data)}\n`);
    else if (outcome.text.length > 0) (outcome.code === 0 ? stdout : stderr)(`${outcome.text.join("\n")}\n`);
    return outcome.code;
  } catch (error) {
    const body = BulkheadError.isInstance(error) ? error.toJSON() : { name: "Error", message: (error as Error).message };
    if (json) stdout(`${JSON.stringify({ error: body })}\n`);
    else stderr(`${body.message}\n`);
    // Refused by a limit is not a failure of the tool: scripts tell the two apart.
    return "code" in body && (body.code === "SCOPE_LIMIT" || body.code === "BUDGET_EXCEEDED" || body.code === "MEMORY_REFUSED") ? 2 : 1;
  }
}

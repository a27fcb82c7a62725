// The end-to-end flow of seed 000's task with a real agent: scope and context budget, the real
// Claude Code CLI in a sealed session whose only door out is the model gateway, metering and
// budget enforcement on the wire from the upstream's own usage, then harvest(): the change set,
// the guard, one commit by the lead in the source repo, and the handover with the gateway's figures.
//
// No real model API is reachable from this machine, so the model behind the gateway is a scripted
// Anthropic-compatible server on 127.0.0.1 that this demo starts: its answers (text, tool calls,
// token usage) are scripted. Everything else is real. With BULKHEAD_UPSTREAM_ANTHROPIC set, the
// gateway forwards to that upstream instead, with the host's own credential (ANTHROPIC_API_KEY or
// CLAUDE_CODE_OAUTH_TOKEN), and the model's answers are its own.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { agentImage as claudeCodeImage, claudeCode, formatAgentEvent, startAgent } from "@bulkhead/agents";
import { createBudget, createTokenCounter, createTracker } from "@bulkhead/budget";
import { harvest } from "@bulkhead/cli";
import { createFileProposalStore, createMultiRepoGuard, loadTaskSpec, resolveScope, type UsageReport } from "@bulkhead/core";
import { createGateway, type AuditRecord, type SessionStats } from "@bulkhead/gateway";
import { renderHandover, renderTaskPrompt } from "@bulkhead/handover";
import { buildImage, createSession, defineProject } from "@bulkhead/sandbox";
import { createScriptedUpstream, type ScriptedTurn, type ScriptedUpstream } from "@bulkhead/test-utils";

export const handoverYaml = `# handover.yaml (seed 000)
task: "Add rate limiting to user API"
id: rate-limit
context_scope:
  repos:
    - name: "backend-api"
      paths: ["src/routes/user.ts", "src/middleware/"]
      exclude: ["src/routes/admin.ts"]
  max_files: 15
  max_tokens: 50000
ownership:
  primary_repo: "backend-api"
  allowed_cross_repo_reads: ["shared-types"]
  allowed_cross_repo_writes: []
budgets:
  context_read: 50000
  generation: 10000
  tool_calls: 20000
  session_total: 100000
`;

/**
 * Seed 000's spec with budgets sized for Claude Code, which resends its whole prompt (about 25k
 * tokens, mostly read from the cache) on every call: the gateway books each call's prompt on the
 * context-read budget and the session total, so seed 000's 50k would stop it on its second call.
 */
export const claudeCodeHandoverYaml: string = handoverYaml
  .replace("context_read: 50000", "context_read: 150000")
  .replace("session_total: 100000", "session_total: 120000");

const env = {
  ...process.env,
  GIT_AUTHOR_NAME: "Demo",
  GIT_AUTHOR_EMAIL: "demo@example.com",
  GIT_COMMITTER_NAME: "Demo",
  GIT_COMMITTER_EMAIL: "demo@example.com",
};
const gitRaw = (cwd: string, args: string[]) => execFileSync("git", ["-c", "safe.directory=*", ...args], { cwd, env, encoding: "utf8" });
const git = (cwd: string, args: string[]) => gitRaw(cwd, args).trim();

function makeRepo(root: string, name: string, files: Record<string, string>): string {
  const dir = join(root, name);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  git(dir, ["init", "--quiet", "--initial-branch=main"]);
  git(dir, ["add", "--all"]);
  git(dir, ["commit", "--quiet", "-m", "initial"]);
  return dir;
}

export interface DemoResult {
  sha: string;
  committedFiles: string[];
  held: { repo: string; file: string; id: string }[];
  handoverPath: string;
  /** Where the lead's commit is, in the source repo. */
  ref: string;
  /** The gateway's report for the session (from the upstream's usage): what the handover shows. */
  report: UsageReport;
  totalTokens: number;
  /** The gateway's totals and its audit record of every call. */
  stats: SessionStats;
  audit: readonly AuditRecord[];
  /** The budget that acted on the wire when the gateway refused a call, if one did. */
  refusedBy: string | undefined;
  /** The agent CLI's exit code. */
  agentExitCode: number;
  /** The scripted upstream's record of what it received and sent; undefined with BULKHEAD_UPSTREAM_ANTHROPIC. */
  upstream: ScriptedUpstream | undefined;
  /** Whether the model's answers were scripted (no BULKHEAD_UPSTREAM_ANTHROPIC). */
  scripted: boolean;
}

/** Seed 000's three repositories under `root` and its `handover.yaml`; the CI-script example uses them too. */
export function createRateLimitWorkspace(root: string): {
  repos: Record<"backend-api" | "shared-types" | "frontend", string>;
  spec: string;
} {
  const repos = {
    "backend-api": makeRepo(root, "backend-api", {
      "src/routes/user.ts": "export const user = { path: '/users/:id' };\n",
      "src/routes/admin.ts": "export const admin = { path: '/admin' };\n",
      "src/routes/index.ts": 'import { user } from "./user";\n\nexport const routes = [user];\n',
      "src/middleware/auth.ts": "export const auth = () => true;\n",
      "src/http.ts":
        "export type Request = { userId: string }; export type Response = { status(code: number): { send(text: string): void } }; export type Next = () => void;\n",
    }),
    "shared-types": makeRepo(root, "shared-types", { "src/user.ts": "export interface User { id: string }\n" }),
    frontend: makeRepo(root, "frontend", { "src/api.ts": "export const fetchUser = (id: string) => fetch(`/users/${id}`);\n" }),
  };
  writeFileSync(join(root, "handover.yaml"), handoverYaml);
  return { repos, spec: join(root, "handover.yaml") };
}

const rateLimitSource = `import type { Request, Response, Next } from "../http";

const windowMs = 60_000;
const limit = 100;
const hits = new Map<string, { count: number; start: number }>();

/** 100 requests per minute per user; 429 after that. */
export function rateLimit(request: Request, response: Response, next: Next): void {
  const now = Date.now();
  const entry = hits.get(request.userId) ?? { count: 0, start: now };
  if (now - entry.start > windowMs) Object.assign(entry, { count: 0, start: now });
  entry.count++;
  hits.set(request.userId, entry);
  if (entry.count > limit) return void response.status(429).send("Too Many Requests");
  next();
}
`;

/**
 * The scripted model: what it answers to each of Claude Code's calls, with the usage it reports
 * (a prompt cached on the first call and read from the cache after, as the real API does). The
 * tool calls are Claude Code's own tools, with absolute paths in the box. After the fourth
 * answer 107,401 of the session total's 120,000 tokens are booked, and Claude Code's fifth
 * prompt (about 28k tokens, counted by the gateway) does not fit in the rest: the gateway refuses
 * it before forwarding, so the model's last turn is never asked for.
 */
export const scriptedTurns: readonly ScriptedTurn[] = [
  {
    text: "Reading the routes, the shared User type and the frontend's API client.",
    toolUses: [
      { name: "Read", input: { file_path: "/workspace/backend-api/src/routes/index.ts" } },
      { name: "Read", input: { file_path: "/workspace/shared-types/src/user.ts" } },
      { name: "Read", input: { file_path: "/workspace/frontend/src/api.ts" } },
    ],
    usage: { uncachedInputTokens: 12, cacheWrite5mTokens: 24_800, outputTokens: 310 },
  },
  {
    text: "Adding a per-user rate limit middleware (100 requests a minute).",
    toolUses: [{ name: "Write", input: { file_path: "/workspace/backend-api/src/middleware/rateLimit.ts", content: rateLimitSource } }],
    usage: { uncachedInputTokens: 8, cacheReadTokens: 24_800, cacheWrite5mTokens: 600, outputTokens: 2_900 },
  },
  {
    text: "Registering it in the routes, and telling the frontend about 429s.",
    toolUses: [
      {
        name: "Edit",
        input: {
          file_path: "/workspace/backend-api/src/routes/index.ts",
          old_string: 'import { user } from "./user";\n\nexport const routes = [user];',
          new_string:
            'import { rateLimit } from "../middleware/rateLimit";\nimport { user } from "./user";\n\nexport const routes = [rateLimit, user];',
        },
      },
      {
        name: "Edit",
        input: {
          file_path: "/workspace/frontend/src/api.ts",
          old_string: "export const fetchUser",
          new_string: 'export const onTooManyRequests = () => alert("Slow down");\nexport const fetchUser',
        },
      },
    ],
    usage: { uncachedInputTokens: 6, cacheReadTokens: 25_400, cacheWrite5mTokens: 900, outputTokens: 640 },
  },
  {
    text: "Checking the middleware is in place.",
    toolUses: [{ name: "Bash", input: { command: "ls /workspace/backend-api/src/middleware", description: "List the middleware" } }],
    usage: { uncachedInputTokens: 5, cacheReadTokens: 26_300, cacheWrite5mTokens: 300, outputTokens: 420 },
  },
  // Never reached: the gateway refuses the call that would have asked for it.
  { text: "Done: rate limiting is in place.", usage: { uncachedInputTokens: 5, cacheReadTokens: 26_600, outputTokens: 120 } },
];

/**
 * A scripted stand-in agent baked from the static busybox (`agent.sh`: it edits the files by hand
 * and prints a Claude Code transcript). The CI-script example runs it through `bulkhead dispatch`.
 */
export const agentImage = {
  files: { "rootfs/bin/busybox": "/bin/busybox", "rootfs/agent.sh": new URL("agent.sh", import.meta.url).pathname },
  dockerfile:
    'FROM scratch\nCOPY rootfs/ /\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nRUN ["/bin/busybox", "mkdir", "-p", "-m", "1777", "/tmp"]\n',
};

/** Claude Code's side calls without tools (a title, a quota probe): answered aside, so they do not eat the script. */
const sideAnswer: ScriptedTurn = { text: "Rate limiting", usage: { uncachedInputTokens: 90, outputTokens: 4 } };

/** Runs the whole flow under `root` and reports what it did through `log`. */
export async function runRateLimitDemo({ root, log = console.log }: { root: string; log?: (line: string) => void }): Promise<DemoResult> {
  const { repos, spec: specPath } = createRateLimitWorkspace(root);
  writeFileSync(specPath, claudeCodeHandoverYaml);

  // 1. Resolve the scope and check the context budget before anything runs.
  const spec = await loadTaskSpec(specPath, { knownRepos: Object.keys(repos) });
  using counter = createTokenCounter({ model: "claude-sonnet-4-5" });
  const scope = await resolveScope(spec, { repos: { "backend-api": repos["backend-api"] }, counter });
  scope.assertWithinLimits();
  const budget = createBudget({
    id: "rate-limit",
    limits: {
      contextRead: spec.budgets.contextRead!,
      generation: spec.budgets.generation!,
      toolCalls: spec.budgets.toolCalls!,
      sessionTotal: spec.budgets.sessionTotal!,
    },
  });
  const check = budget.checkContext(scope);
  if (!check.allowed) throw new Error(check.message);
  log(
    `scope: ${scope.totals.files} files, ${scope.totals.tokens} tokens (estimated for Claude), within the context budget of ${spec.budgets.contextRead}`,
  );

  // 2. The model: a scripted Anthropic-compatible server on the host's loopback, unless
  //    BULKHEAD_UPSTREAM_ANTHROPIC names a real upstream.
  const realUpstream = process.env.BULKHEAD_UPSTREAM_ANTHROPIC;
  const upstream = realUpstream
    ? undefined
    : await createScriptedUpstream({
        respond: (received) => (Array.isArray(received.body?.tools) && received.body.tools.length > 0 ? undefined : sideAnswer),
        turns: scriptedTurns,
      });
  if (upstream)
    log(
      `model: SCRIPTED. An Anthropic-compatible server on ${upstream.url} started by this demo answers with scripted text, tool calls and usage; the Claude Code CLI, the box, the gateway, its metering and budgets, and the lead's commit are real`,
    );
  else log(`model: ${realUpstream} (BULKHEAD_UPSTREAM_ANTHROPIC), with the host's credential`);

  // 3. The gateway on a unix socket: the session's only door out. It holds the key (a throwaway
  //    one for the scripted model), meters every call from the upstream's usage, and enforces the
  //    spec's budgets on the wire.
  const socketDir = join(root, "gateway");
  mkdirSync(socketDir);
  const socketPath = join(socketDir, "gateway.sock");
  const gateway = await createGateway({
    listen: { path: socketPath },
    ...(upstream
      ? { upstreams: { anthropic: upstream.url }, credentials: { anthropic: { apiKey: `sk-ant-demo-${randomBytes(8).toString("hex")}` } } }
      : {}),
  });
  let refusedBy: string | undefined;
  let refusals = 0;
  gateway.on("budget-refused", (event) => {
    // Claude Code tries a refused call again a few times; the first refusal says it all.
    if (refusals++ > 0) return;
    refusedBy = event.kind;
    log(`gateway: REFUSED ${event.callId} before forwarding it: ${event.message}`);
  });
  gateway.on("handover-required", (event) =>
    log(
      `gateway: handover required: the next prompt does not fit in the ${event.kind} budget (${event.used.toLocaleString("en-US")} of ${event.limit?.toLocaleString("en-US")} tokens used)`,
    ),
  );
  gateway.on("call-end", (record) => {
    if (record.outcome === "refused" || !record.usage) return;
    const reserved = `reserved ${record.inputEstimate.toLocaleString("en-US")} in`;
    const clamp = record.maxTokens
      ? `, max_tokens ${record.maxTokens.requested} → ${record.maxTokens.forwarded} (${record.budget.map((act) => act.kind).join(", ")})`
      : "";
    log(
      `gateway: ${record.callId} ${record.outcome} (${reserved}), booked from the upstream's usage: ${record.usage.inputTokens.toLocaleString("en-US")} in (${record.usage.cacheReadTokens.toLocaleString("en-US")} cache read), ${record.usage.outputTokens.toLocaleString("en-US")} out${clamp}`,
    );
  });
  try {
    const tracker = createTracker({ taskId: spec.id! });
    const { token } = gateway.addSession({ sessionId: spec.id!, budget, tracker, repo: "backend-api", operation: "agent" });

    // 4. The Claude Code image, baked offline from its npm package (shared by every project), and
    //    a sealed session over the three repos: network none, the gateway's socket the only route.
    const project = defineProject({
      name: "rate-limit",
      repos: [
        { name: "backend-api", path: repos["backend-api"] },
        { name: "shared-types", path: repos["shared-types"], mode: "mount-ro" },
        { name: "frontend", path: repos.frontend },
      ],
      image: claudeCodeImage({ agent: "claude-code" }),
    });
    const { tag, cached } = await buildImage(project);
    log(`image: ${tag}${cached ? " (cached)" : " (built)"}`);
    const session = await createSession(project, { tag, home: join(root, ".bulkhead"), gateway: { socketPath } });
    try {
      const security = await session.inspectSecurity();
      log(
        `session: ${session.id}, sealed (network ${security.networkMode}, ${security.capDrop.join(",")} dropped), model calls only through the gateway`,
      );

      // 5. The real Claude Code CLI, with the task prompt rendered from the spec and its scope.
      const prompt = renderTaskPrompt({ spec, scope });
      const run = await startAgent(session, { provider: claudeCode({ model: "claude-sonnet-4-5" }), prompt, gateway: { token } });
      for await (const event of run.events()) if (event.type !== "usage") log(`claude: ${formatAgentEvent(event)}`);
      const { exitCode } = await run.job.wait();
      const report = tracker.report();
      const stats = gateway.stats(spec.id!);
      if (refusals > 1) log(`gateway: refused ${refusals - 1} retries of that call the same way; none reached the model`);
      log(
        `gateway: ${stats.calls - refusals} calls booked from the upstream's usage: ${report.totalTokens.toLocaleString("en-US")} tokens, $${stats.costUsd.toFixed(4)}, cache hit rate ${(stats.cacheHitRate * 100).toFixed(1)}%; the agent exited ${exitCode}`,
      );

      // 6. Harvest, one library call: the change set read once (container paused), the guard per
      //    path, one commit by the lead in the source repo from the change set's bytes, the handover.
      const guard = createMultiRepoGuard({
        primaryRepo: spec.ownership.primaryRepo,
        allowedWrites: spec.ownership.allowedCrossRepoWrites,
        store: createFileProposalStore(join(root, ".bulkhead", "proposals")),
      });
      const harvested = await harvest({
        session,
        spec,
        guard,
        proposer: "agent",
        author: { name: "bulkhead lead", email: "lead@example.com" },
        gates: [{ name: "files-present", command: ["test", "-f", "src/middleware/rateLimit.ts"] }],
        report,
        summary: ["Added rate limit middleware to user API routes (100 req/min per user)", "Registered it in `src/routes/index.ts`"],
        next: ["Frontend needs to handle 429 responses", "Monitoring dashboard should track rate limit hits"],
        notes: [
          ...(refusedBy
            ? [
                `The gateway refused the agent's next model call on the wire: its prompt did not fit in what was left of the ${refusedBy} budget, so the agent stopped before its final answer.`,
              ]
            : []),
          ...(upstream
            ? [
                "The model's answers were scripted (a local Anthropic-compatible server); the token figures are the gateway's, from that upstream's usage.",
              ]
            : []),
        ],
      });
      const held = harvested.held;
      for (const proposal of held) log(`guard: held ${proposal.repo}/${proposal.file} for approval (${proposal.id})`);
      const result = harvested.commits.find((commit) => commit.repo === "backend-api");
      if (!result) throw new Error("the lead made no commit in backend-api");
      log(
        `lead: one commit ${result.sha.slice(0, 12)} for ${spec.id} with ${result.files.join(", ")}, on ${result.branch} of backend-api (its main branch untouched)`,
      );
      const handoverPath = join(root, "handover.md");
      writeFileSync(handoverPath, renderHandover(harvested.handover));
      return {
        sha: result.sha,
        committedFiles: result.files,
        held,
        handoverPath,
        ref: `refs/heads/${result.branch}`,
        report,
        totalTokens: report.totalTokens,
        stats,
        audit: gateway.audit(spec.id!),
        refusedBy,
        agentExitCode: exitCode,
        upstream,
        scripted: upstream !== undefined,
      };
    } finally {
      await session.remove({ force: true });
    }
  } finally {
    await gateway.close();
    await upstream?.close();
  }
}

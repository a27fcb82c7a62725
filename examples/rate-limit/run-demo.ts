// The end-to-end flow of seed 000's task, for real: scope and context budget, a hardened
// session, a scripted agent (a shell script, no model), metering from its stream-json
// transcript, then harvest(): the change set, the guard, one commit by the lead in the source
// repo, and the handover.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createBudget, createTokenCounter, createTracker, meterClaudeCodeStream } from "@bulkhead/budget";
import { createFileProposalStore, loadTaskSpec, MultiRepoGuard, resolveScope } from "@bulkhead/core";
import { harvest } from "@bulkhead/cli";
import { renderHandover } from "@bulkhead/handover";
import { buildImage, createSession, defineProject } from "@bulkhead/sandbox";

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
  totalTokens: number;
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

/** The scripted agent baked into the image: `rootfs/` files and the Dockerfile for a project. */
export const agentImage = {
  files: { "rootfs/bin/busybox": "/bin/busybox", "rootfs/agent.sh": new URL("agent.sh", import.meta.url).pathname },
  dockerfile:
    'FROM scratch\nCOPY rootfs/ /\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nRUN ["/bin/busybox", "mkdir", "-p", "-m", "1777", "/tmp"]\n',
};

/** Runs the whole flow under `root` and reports what it did through `log`. */
export async function runRateLimitDemo({ root, log = console.log }: { root: string; log?: (line: string) => void }): Promise<DemoResult> {
  const { repos } = createRateLimitWorkspace(root);

  // 1. Resolve the scope and check the context budget before anything runs.
  const spec = await loadTaskSpec(join(root, "handover.yaml"), { knownRepos: Object.keys(repos) });
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

  // 2. A hardened session over the three repos; the agent is a shell script baked into the image.
  const project = defineProject({
    name: "rate-limit",
    repos: [
      { name: "backend-api", path: repos["backend-api"] },
      { name: "shared-types", path: repos["shared-types"], mode: "mount-ro" },
      { name: "frontend", path: repos.frontend },
    ],
    image: agentImage,
    agent: { command: ["/bin/sh", "/agent.sh"] },
  });
  const { tag, cached } = await buildImage(project);
  log(`image: ${tag}${cached ? " (cached)" : " (built)"}`);
  const session = await createSession(project, { tag, home: join(root, ".bulkhead") });
  log(`session: ${session.id}, hardened (${(await session.inspectSecurity()).capDrop.join(",")} dropped, network none)`);

  // 3. Inject the agent and meter its transcript.
  const job = await session.inject();
  const { exitCode } = await job.wait();
  if (exitCode !== 0) throw new Error(`the agent exited with ${exitCode}`);
  const tracker = createTracker({ taskId: spec.id! });
  let transcript = "";
  for await (const chunk of job.logs()) transcript += chunk;
  const metered = await meterClaudeCodeStream([transcript], { budget, tracker, repo: "backend-api", operation: "agent" });
  log(
    `agent: ${metered.assistantMessages} messages, ${metered.usage.inputTokens + metered.usage.outputTokens} tokens, reported cost $${metered.costUsd}`,
  );

  // 4. Harvest, one library call: the change set read once (container paused), the guard per
  //    path, one commit by the lead in the source repo from the change set's bytes, the handover.
  const guard = new MultiRepoGuard({
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
    report: tracker.report(),
    summary: ["Added rate limit middleware to user API routes (100 req/min per user)", "Registered it in `src/routes/index.ts`"],
    next: ["Frontend needs to handle 429 responses", "Monitoring dashboard should track rate limit hits"],
  });
  const held = harvested.held;
  for (const proposal of held) log(`guard: held ${proposal.repo}/${proposal.file} for approval (${proposal.id})`);
  const result = harvested.commits.find((commit) => commit.repo === "backend-api");
  if (!result) throw new Error("the lead made no commit in backend-api");
  log(
    `lead: one commit ${result.sha.slice(0, 12)} for ${spec.id} with ${result.files.join(", ")}, on ${result.branch} of backend-api (its main branch untouched)`,
  );
  const document = {
    ...harvested.handover,
    notes: held.length > 0 ? ["A frontend edit is held for approval by the frontend's owners."] : [],
  };
  const handoverPath = join(root, "handover.md");
  writeFileSync(handoverPath, renderHandover(document));
  await session.remove({ force: true });
  return {
    sha: result.sha,
    committedFiles: result.files,
    held,
    handoverPath,
    ref: `refs/heads/${result.branch}`,
    totalTokens: tracker.report().totalTokens,
  };
}

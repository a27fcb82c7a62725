// bench/harvest: session start and harvest of a 10k-file repository, the change-set design (this
// tree) side by side with the code before it (commit 9c0e3e4: `git clone --local` with hard links,
// host git in the clone for uncommitted/fetchCode, the lead committing inside the clone) in the
// same run. The old code is checked out and built into a temporary directory the first time.
// Needs a Docker engine. Run with `npm run bench -- harvest`.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { harvest } from "@bulkhead/cli";
import { createMemoryProposalStore, createMultiRepoGuard, parseTaskSpec } from "@bulkhead/core";
import { createDockerBackend, createSession, defineProject, type Session } from "@bulkhead/sandbox";
import { ensureDocker, ensureTestImage } from "@bulkhead/test-utils";
import Docker from "dockerode";

const OLD_COMMIT = "9c0e3e4";
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const FILES = 10_000;
const root = join(import.meta.dirname, "..");
const data = join(import.meta.dirname, ".data");
const template = join(data, `lead-${FILES}`);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const since = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;
const sh = (cwd: string, command: string, args: string[]) => execFileSync(command, args, { cwd, stdio: ["ignore", "pipe", "inherit"] });

// The same 10k-file repository bench/git-lead generates (made here when it is missing).
if (!fs.existsSync(join(template, ".done"))) {
  fs.rmSync(template, { recursive: true, force: true });
  for (let index = 0; index < FILES; index++) {
    const dir = join(template, "src", `pkg${Math.floor(index / 100)}`);
    if (index % 100 === 0) fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(join(dir, `file${index}.ts`), `export const value${index} = ${index};\n`);
  }
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: "Bench",
    GIT_AUTHOR_EMAIL: "b@example.com",
    GIT_COMMITTER_NAME: "Bench",
    GIT_COMMITTER_EMAIL: "b@example.com",
  };
  for (const args of [
    ["init", "--quiet", "--initial-branch=main"],
    ["config", "gc.auto", "0"],
    ["add", "--all"],
    ["commit", "--quiet", "-m", "initial"],
  ])
    execFileSync("git", args, { cwd: template, env, stdio: "ignore" });
  fs.writeFileSync(join(template, ".git", "info", "exclude"), ".done\n");
  fs.writeFileSync(join(template, ".done"), "");
}

// Today's code before the change-set design, built once into a temporary directory. Its packages
// resolve @bulkhead/core to its own core; everything else comes from this tree's node_modules.
const oldDir = join(tmpdir(), `bulkhead-bench-old-${OLD_COMMIT}`);
if (!fs.existsSync(join(oldDir, ".built"))) {
  fs.rmSync(oldDir, { recursive: true, force: true });
  sh(root, "git", ["worktree", "prune"]);
  sh(root, "git", ["worktree", "add", "--detach", "--force", oldDir, OLD_COMMIT]);
  fs.symlinkSync(join(root, "node_modules"), join(oldDir, "node_modules"));
  for (const name of ["core", "sandbox", "git-lead", "handover"]) {
    sh(join(oldDir, "packages", name), "npx", ["tsup", "--no-dts"]);
    if (name === "core") continue;
    fs.mkdirSync(join(oldDir, "packages", name, "node_modules", "@bulkhead"), { recursive: true });
    fs.symlinkSync(join(oldDir, "packages", "core"), join(oldDir, "packages", name, "node_modules", "@bulkhead", "core"));
  }
  fs.writeFileSync(join(oldDir, ".built"), "");
}
type OldSession = Session & {
  uncommitted(): Promise<Record<string, string[]>>;
  readWorkspaceFile(repo: string, file: string): { kind: "file"; content: Buffer } | { kind: "link"; target: string } | { kind: "missing" };
  fetchCode(options: { strict: boolean }): Promise<unknown[]>;
};
const old = {
  sandbox: (await import(join(oldDir, "packages", "sandbox", "dist", "index.js"))) as {
    createSession: (project: unknown, options: { home: string; tag: string; docker: Docker }) => Promise<OldSession>;
    defineProject: typeof defineProject;
  },
  lead: (await import(join(oldDir, "packages", "git-lead", "dist", "index.js"))) as {
    createCommitLead: (options: { dir: string; author: { name: string; email: string } }) => Promise<{
      submit(submission: { issueId: string; worker: string; files: string[]; message: string }): Promise<{ status: string; sha?: string }>;
      close(): Promise<void>;
    }>;
  },
  handover: (await import(join(oldDir, "packages", "handover", "dist", "index.js"))) as {
    buildHandover: (options: Record<string, unknown>) => Promise<unknown>;
  },
};

const engine = await ensureDocker();
const image = ensureTestImage();
const docker = new Docker();
const home = join(data, "harvest-home");
const sources = { ours: join(data, "harvest-ours"), old: join(data, "harvest-old") };
for (const dir of Object.values(sources)) if (!fs.existsSync(dir)) fs.cpSync(template, dir, { recursive: true });
let issue = 0;
const RUN_ID = Date.now().toString(36);
// A new issue per harvest: the lead keeps one commit per issue in a repository.
const specOf = () =>
  parseTaskSpec(
    `task: Bench\nid: BENCH-${RUN_ID}-${++issue}\ncontext_scope:\n  repos:\n    - name: app\n      paths: ['src/']\n  max_files: 20000\n  max_tokens: 10000000\nownership:\n  primary_repo: app\n`,
  );
const author = { name: "Bench", email: "bench@example.com" };
// What the agent does: change 10 files, add 2, delete 1.
const agentScript =
  "cd /workspace/app && for i in 0 1 2 3 4 5 6 7 8 9; do echo '// changed' >> src/pkg$i/file$((i * 100)).ts; done && echo new > src/new-a.ts && echo new > src/new-b.ts && rm src/pkg99/file9999.ts";

const times = { startOurs: [] as number[], startOld: [] as number[], harvestOurs: [] as number[], harvestOld: [] as number[] };
const phases: Record<string, number[]> = {};

/** harvest()'s progress lines, by their first word, as the phase that starts there. */
const PHASES: Record<string, string> = {
  reading: "session.changes() (paused read, hashing, base tree)",
  checking: "guard (unified diffs, base blobs from the source)",
  committing: "lead commit in the source repo (blobs, tree, gates, CAS)",
  recording: "fetchCode from the change set + handover",
};

async function runOurs(): Promise<void> {
  const project = defineProject({ name: "bench-harvest", repos: [{ name: "app", path: sources.ours }], image: { existing: image } });
  let start = process.hrtime.bigint();
  const session = await createSession(project, { home, tag: image, backend: createDockerBackend({ docker }) });
  times.startOurs.push(since(start));
  await session.exec(["/bin/sh", "-c", agentScript]);
  const guard = createMultiRepoGuard({ primaryRepo: "app", store: createMemoryProposalStore() });
  const spec = specOf();
  let last = "start";
  let mark = process.hrtime.bigint();
  const step = (name: string) => {
    (phases[last] ??= []).push(since(mark));
    last = name;
    mark = process.hrtime.bigint();
  };
  start = process.hrtime.bigint();
  mark = start;
  const result = await harvest({
    session,
    spec,
    guard,
    author,
    onProgress: (line) => step(PHASES[line.split(" ")[0]!] ?? line),
  });
  step("end");
  times.harvestOurs.push(since(start));
  if (result.commits.length !== 1) throw new Error("expected one commit");
  await session.remove({ force: true });
}

async function runOld(): Promise<void> {
  const project = old.sandbox.defineProject({
    name: "bench-harvest-old",
    repos: [{ name: "app", path: sources.old }],
    image: { existing: image },
  });
  let start = process.hrtime.bigint();
  const session = await old.sandbox.createSession(project, { home, tag: image, docker });
  times.startOld.push(since(start));
  await session.exec(["/bin/sh", "-c", agentScript]);
  const guard = createMultiRepoGuard({ primaryRepo: "app", store: createMemoryProposalStore() });
  const spec = specOf();
  start = process.hrtime.bigint();
  // The old harvest loop (packages/cli/src/composites.ts at 9c0e3e4), step for step.
  const allowed: string[] = [];
  const uncommitted = await session.uncommitted();
  for (const file of uncommitted.app ?? []) {
    const found = session.readWorkspaceFile("app", file);
    const diff = found.kind === "file" ? `+++ ${file}\n${found.content.toString("utf8")}` : `${found.kind} ${file}`;
    const outcome = await guard.propose({ repo: "app", file, diff, author: "agent" });
    if (outcome.status !== "pending") allowed.push(file);
  }
  const clone = join(session.state.workspace, "app");
  const lead = await old.lead.createCommitLead({ dir: clone, author });
  const result = await lead.submit({ issueId: spec.id!, worker: "agent", files: allowed, message: "Bench" });
  await lead.close();
  if (result.status !== "committed") throw new Error(`old lead: ${JSON.stringify(result)}`);
  await session.fetchCode({ strict: true });
  await old.handover.buildHandover({
    spec,
    repos: { app: clone },
    base: { app: session.state.repos[0]!.baseSha },
    summary: ["bench"],
  });
  times.harvestOld.push(since(start));
  await session.remove({ force: true });
}

// Where session start goes: the clone itself, both ways, outside any session.
const cloneTimes = { shared: [] as number[], local: [] as number[] };
const cloneOnce = (kind: "shared" | "local") => {
  const target = join(data, `harvest-clone-${kind}`);
  fs.rmSync(target, { recursive: true, force: true });
  const start = process.hrtime.bigint();
  sh(data, "git", ["clone", "--quiet", `--${kind}`, "--no-checkout", sources.ours, target]);
  sh(target, "git", ["checkout", "--quiet", "-b", "bench"]);
  cloneTimes[kind].push(since(start));
  fs.rmSync(target, { recursive: true, force: true });
};

// One warm-up round each (page cache, image), then alternate who goes first.
await runOurs();
await runOld();
for (const key of Object.keys(times) as (keyof typeof times)[]) times[key].length = 0;
for (const key of Object.keys(phases)) delete phases[key];
for (let run = 0; run < RUNS; run++) {
  if (run % 2 === 0) await runOurs().then(runOld);
  else await runOld().then(runOurs);
  cloneOnce(run % 2 === 0 ? "shared" : "local");
  cloneOnce(run % 2 === 0 ? "local" : "shared");
}
await engine.stop();

const row = (name: string, ours: number[], before: number[]) =>
  `| ${name} | ${median(before).toFixed(0)} | ${median(ours).toFixed(0)} | ${(median(ours) / median(before)).toFixed(2)}x |`;
console.log(`\nbench/harvest: median of ${RUNS} runs, 1 repo × ${FILES.toLocaleString("en")} files, Node ${process.version}`);
console.log(`| step | before (${OLD_COMMIT}) ms | change-set design ms | ratio |`);
console.log("|---|---:|---:|---:|");
console.log(row("session start (createSession)", times.startOurs, times.startOld));
console.log(row("harvest (read, guard, lead commit, fetch, handover)", times.harvestOurs, times.harvestOld));
// The two designs ran within seconds of each other in each round: their ratio is less exposed to
// the machine's drift (a shared host) than the ratio of two medians.
const paired = (ours: number[], before: number[]) => median(ours.map((value, index) => value / before[index]!)).toFixed(2);
console.log(
  `\nmedian of the per-round ratios: session start ${paired(times.startOurs, times.startOld)}x, harvest ${paired(times.harvestOurs, times.harvestOld)}x`,
);
console.log(
  `\nsession start, the clone alone (median ms): git clone --shared + checkout ${median(cloneTimes.shared).toFixed(0)}, git clone --local (hard links) + checkout ${median(cloneTimes.local).toFixed(0)}`,
);
console.log("\nwhere the new harvest's time goes (median ms):");
for (const [name, values] of Object.entries(phases)) if (name !== "start") console.log(`- ${name}: ${median(values).toFixed(0)}`);

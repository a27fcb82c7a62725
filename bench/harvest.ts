// bench/harvest: session start and harvest of a 10k-file repository, the change-set design (this
// tree) side by side with the code before it (commit 9c0e3e4: `git clone --local` with hard links,
// host git in the clone for uncommitted/fetchCode, the lead committing inside the clone) in the
// same run, and session start beside the shell script `git clone --local` + `docker run -d`. The
// old code is checked out (`git archive`) and built into a temporary directory per run; when it
// no longer builds, the bench says so and compares against the shell script alone. All cases go
// through bench-helper, interleaved in a new order each round; sessions are started and removed
// in untimed steps. Needs a Docker engine. Run with `npm run bench -- harvest`.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { harvest } from "@bulkhead/cli";
import { createMemoryProposalStore, createMultiRepoGuard, parseTaskSpec } from "@bulkhead/core";
import { createDockerBackend, createSession, defineProject, type Session } from "@bulkhead/sandbox";
import { ensureDocker, ensureTestImage } from "@bulkhead/test-utils";
import Docker from "dockerode";
import { BENCH_RUN_LABEL, sweepBench } from "./lib/bench-containers.js";
import { begin, measure, median, pairedRatio, report, type BenchCase } from "./lib/bench-helper.js";
import { copyOf, leadRepository } from "./lib/lead-repo.js";
import { buildOldCode, oldCodeFailed, type OldCode } from "./lib/old-code.js";

const OLD_COMMIT = "9c0e3e4";
const FILES = 10_000;
const RUN_ID = Date.now().toString(36);
const runLabel = `${BENCH_RUN_LABEL}=${RUN_ID}`;
const sh = (cwd: string, command: string, args: string[]) => execFileSync(command, args, { cwd, stdio: ["ignore", "pipe", "inherit"] });

const template = leadRepository(FILES);
// Two sources: this tree's lead commits into its source repository, the old lead into the clone.
const sources = { ours: copyOf(template, "harvest-ours"), old: copyOf(template, "harvest-old") };
// Everything a run makes (session state, workspaces, the script's clones) lives here; removed at the end.
const scratch = fs.mkdtempSync(join(tmpdir(), "bulkhead-bench-harvest-"));
const home = join(scratch, "home");

type OldSession = Session & {
  uncommitted(): Promise<Record<string, string[]>>;
  readWorkspaceFile(repo: string, file: string): { kind: "file"; content: Buffer } | { kind: "link"; target: string } | { kind: "missing" };
  fetchCode(options: { strict: boolean }): Promise<unknown[]>;
};
interface OldModules {
  sandbox: {
    createSession: (project: unknown, options: { home: string; tag: string; docker: Docker }) => Promise<OldSession>;
    defineProject: typeof defineProject;
  };
  lead: {
    createCommitLead: (options: { dir: string; author: { name: string; email: string } }) => Promise<{
      submit(submission: { issueId: string; worker: string; files: string[]; message: string }): Promise<{ status: string; sha?: string }>;
      close(): Promise<void>;
    }>;
  };
  handover: { buildHandover: (options: Record<string, unknown>) => Promise<unknown> };
}
// The code before the change-set design. Its packages resolve @bulkhead/core to its own core;
// everything else comes from this tree's node_modules.
let oldCode: OldCode | undefined;
let old: OldModules | undefined;
let oldProblem = "";
try {
  oldCode = buildOldCode(OLD_COMMIT, ["core", "sandbox", "git-lead", "handover"]);
  old = {
    sandbox: await oldCode.load("sandbox"),
    lead: await oldCode.load("git-lead"),
    handover: await oldCode.load("handover"),
  };
} catch (error) {
  oldProblem = oldCodeFailed(OLD_COMMIT, error);
}

const engine = await ensureDocker();
const image = ensureTestImage();
const docker = new Docker();
const backend = createDockerBackend({ docker });
let issue = 0;
// A new issue per harvest: the lead keeps one commit per issue in a repository.
const specOf = () =>
  parseTaskSpec(
    `task: Bench\nid: BENCH-${RUN_ID}-${++issue}\ncontext_scope:\n  repos:\n    - name: app\n      paths: ['src/']\n  max_files: 20000\n  max_tokens: 10000000\nownership:\n  primary_repo: app\n`,
  );
const author = { name: "Bench", email: "bench@example.com" };
// What the agent does: change 10 files, add 2, delete 1.
const agentScript =
  "cd /workspace/app && for i in 0 1 2 3 4 5 6 7 8 9; do echo '// changed' >> src/pkg$i/file$((i * 100)).ts; done && echo new > src/new-a.ts && echo new > src/new-b.ts && rm src/pkg99/file9999.ts";

/** harvest()'s progress lines, by their first word, as the phase that starts there. */
const PHASES: Record<string, string> = {
  reading: "session.changes() (paused read, hashing, base tree)",
  checking: "guard (unified diffs, base blobs from the source)",
  committing: "lead commit in the source repo (blobs, tree, gates, CAS)",
  recording: "fetchCode from the change set + handover",
};
const phases: Record<string, number[]> = {};

// The session each case works on, started and removed outside the timed step.
const live = new Map<string, Session>();
const removeLive = async (label: string) => {
  await live.get(label)?.remove({ force: true });
  live.delete(label);
};
const startOurs = () =>
  createSession(defineProject({ name: "bench-harvest", repos: [{ name: "app", path: sources.ours }], image: { existing: image } }), {
    home,
    tag: image,
    backend,
  });
const startOld = (modules: OldModules) =>
  modules.sandbox.createSession(
    modules.sandbox.defineProject({ name: "bench-harvest-old", repos: [{ name: "app", path: sources.old }], image: { existing: image } }),
    { home, tag: image, docker },
  );

async function harvestOurs(session: Session): Promise<void> {
  const guard = createMultiRepoGuard({ primaryRepo: "app", store: createMemoryProposalStore() });
  let last = "start";
  let mark = process.hrtime.bigint();
  const step = (name: string) => {
    (phases[last] ??= []).push(Number(process.hrtime.bigint() - mark) / 1e6);
    last = name;
    mark = process.hrtime.bigint();
  };
  const result = await harvest({ session, spec: specOf(), guard, author, onProgress: (line) => step(PHASES[line.split(" ")[0]!] ?? line) });
  step("end");
  if (result.commits.length !== 1) throw new Error(`expected one commit, got ${result.commits.length}`);
}

// The old harvest loop (packages/cli/src/composites.ts at 9c0e3e4), step for step.
async function harvestOld(modules: OldModules, session: OldSession): Promise<void> {
  const guard = createMultiRepoGuard({ primaryRepo: "app", store: createMemoryProposalStore() });
  const spec = specOf();
  const allowed: string[] = [];
  const uncommitted = await session.uncommitted();
  for (const file of uncommitted.app ?? []) {
    const found = session.readWorkspaceFile("app", file);
    const diff = found.kind === "file" ? `+++ ${file}\n${found.content.toString("utf8")}` : `${found.kind} ${file}`;
    const outcome = await guard.propose({ repo: "app", file, diff, author: "agent" });
    if (outcome.status !== "pending") allowed.push(file);
  }
  const clone = join(session.state.workspace, "app");
  const lead = await modules.lead.createCommitLead({ dir: clone, author });
  const result = await lead.submit({ issueId: spec.id!, worker: "agent", files: allowed, message: "Bench" });
  await lead.close();
  if (result.status !== "committed") throw new Error(`old lead: ${JSON.stringify(result)}`);
  await session.fetchCode({ strict: true });
  await modules.handover.buildHandover({ spec, repos: { app: clone }, base: { app: session.state.repos[0]!.baseSha }, summary: ["bench"] });
}

// The shell baseline of session start (as bench/sandbox): a clone with hard links, a branch, a container.
let shellRun = 0;
let shellContainer = "";
const shellWorkspace = join(scratch, "shell");
const startShell = () => {
  const run = shellRun++;
  const script = [
    `mkdir -p ${shellWorkspace}`,
    `git clone --quiet --local ${sources.ours} ${shellWorkspace}/app && git -C ${shellWorkspace}/app checkout --quiet -b bench-${run}`,
    `docker run -d --label ${runLabel} --network none --cap-drop ALL --read-only -v ${shellWorkspace}:/workspace ${image} sh -c 'sleep 3600'`,
  ].join(" && ");
  shellContainer = execFileSync("bash", ["-c", script], { encoding: "utf8" }).trim();
};
const removeShell = () => {
  if (shellContainer !== "") execFileSync("docker", ["rm", "--force", shellContainer], { stdio: "ignore" });
  shellContainer = "";
  fs.rmSync(shellWorkspace, { recursive: true, force: true });
};

// Where session start goes: the clone and checkout alone, both ways, outside any session.
const cloneCase = (kind: "shared" | "local", label: string): BenchCase => {
  const target = join(scratch, `clone-${kind}`);
  const remove = () => fs.rmSync(target, { recursive: true, force: true });
  return {
    label,
    before: remove,
    run: () => {
      sh(scratch, "git", ["clone", "--quiet", `--${kind}`, "--no-checkout", sources.ours, target]);
      sh(target, "git", ["checkout", "--quiet", "-b", "bench"]);
    },
    after: remove,
  };
};

const LABELS = {
  startOurs: "this tree: createSession",
  startOld: `${OLD_COMMIT}: createSession`,
  startShell: "shell: git clone --local + checkout -b + docker run -d",
  harvestOurs: "this tree: harvest() (changes, guard, lead commit in the source, fetchCode, handover)",
  harvestOld: `${OLD_COMMIT}: uncommitted, guard, lead commit in the clone, fetchCode, handover`,
  cloneLocal: "git clone --local (hard links) + checkout",
  cloneShared: "git clone --shared + checkout",
};
const cases: BenchCase[] = [
  { label: LABELS.startOurs, run: async () => live.set(LABELS.startOurs, await startOurs()), after: () => removeLive(LABELS.startOurs) },
  ...(old
    ? [
        {
          label: LABELS.startOld,
          run: async () => live.set(LABELS.startOld, await startOld(old)),
          after: () => removeLive(LABELS.startOld),
        },
      ]
    : []),
  { label: LABELS.startShell, before: removeShell, run: startShell, after: removeShell },
  {
    label: LABELS.harvestOurs,
    before: async () => {
      const session = await startOurs();
      live.set(LABELS.harvestOurs, session);
      await session.exec(["/bin/sh", "-c", agentScript]);
    },
    run: () => harvestOurs(live.get(LABELS.harvestOurs)!),
    after: () => removeLive(LABELS.harvestOurs),
  },
  ...(old
    ? [
        {
          label: LABELS.harvestOld,
          before: async () => {
            const session = await startOld(old);
            live.set(LABELS.harvestOld, session);
            await session.exec(["/bin/sh", "-c", agentScript]);
          },
          run: () => harvestOld(old, live.get(LABELS.harvestOld) as OldSession),
          after: () => removeLive(LABELS.harvestOld),
        },
      ]
    : []),
  cloneCase("local", LABELS.cloneLocal),
  cloneCase("shared", LABELS.cloneShared),
];

try {
  // One untimed warm-up round (page cache, image, the old code's first import), then the runs.
  await measure(cases, 1);
  for (const key of Object.keys(phases)) delete phases[key];
  const mark = begin(
    `bench/harvest: 1 repo × ${FILES.toLocaleString("en-US")} files, this tree beside ${old ? OLD_COMMIT : "the shell script"}`,
  );
  const samples = await measure(cases, undefined, { order: "rotate" });
  const byLabel = (label: string) => samples.find((sample) => sample.label === label)!;
  const cpuNote = "CPU: this process and its exited children (git, the docker CLI); not dockerd or the container.";
  const startBase = old ? LABELS.startOld : LABELS.startShell;
  const shell = byLabel(LABELS.startShell);
  const goal = (ours: string, before: string, most: number) => {
    const ratio = byLabel(ours).median / byLabel(before).median;
    return `${ratio.toFixed(2)}× by medians, ${ratio <= most ? "met" : "NOT met"}`;
  };
  report(
    mark,
    samples.filter((sample) => sample.label.endsWith("createSession") || sample.label === LABELS.startShell),
    {
      baseline: startBase,
      extra: { "÷ shell script": (sample) => `${(sample.median / shell.median).toFixed(2)}×` },
      notes: [
        ...(oldProblem ? [oldProblem] : []),
        `paired (median of the per-round ratios): this tree ÷ ${startBase} ${pairedRatio(byLabel(LABELS.startOurs), byLabel(startBase)).toFixed(2)}×` +
          (old ? `; this tree ÷ shell ${pairedRatio(byLabel(LABELS.startOurs), shell).toFixed(2)}×` : ""),
        `goal (issue 12): session start ≤ 1.2× the code before: ${old ? goal(LABELS.startOurs, LABELS.startOld, 1.2) : "not measured (no old code)"}`,
        `goal (issue 19): session start ≤ 1.0× the shell script at 1 repo: ${goal(LABELS.startOurs, LABELS.startShell, 1.0)}`,
        cpuNote,
      ],
    },
  );
  const harvestSamples = samples.filter((sample) => sample.label === LABELS.harvestOurs || sample.label === LABELS.harvestOld);
  report(mark, harvestSamples, {
    baseline: old ? LABELS.harvestOld : LABELS.harvestOurs,
    notes: [
      ...(old
        ? [
            `paired (median of the per-round ratios): ${pairedRatio(byLabel(LABELS.harvestOurs), byLabel(LABELS.harvestOld)).toFixed(2)}×`,
            `goal (issue 12): harvest ≤ 1.2× the code before: ${goal(LABELS.harvestOurs, LABELS.harvestOld, 1.2)}`,
          ]
        : [`NO BASELINE: ${oldProblem}`]),
      "where this tree's harvest time goes (median ms):",
      ...Object.entries(phases)
        .filter(([name]) => name !== "start")
        .map(([name, values]) => `- ${name}: ${median(values).toFixed(0)}`),
      cpuNote,
    ],
  });
  report(
    mark,
    samples.filter((sample) => sample.label === LABELS.cloneLocal || sample.label === LABELS.cloneShared),
    { baseline: LABELS.cloneLocal, notes: ["session start, the clone and its checkout alone (outside any session)"] },
  );
} finally {
  for (const label of [...live.keys()]) await removeLive(label).catch(() => undefined);
  removeShell();
  sweepBench({ home, runLabel, scratch, oldCode });
  await engine.stop();
}

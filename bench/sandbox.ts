// bench/sandbox: session start over 1, 3 and 6 repos × 10k files beside a shell script doing the
// same (git clone --local × N + git checkout -b + docker run -d) and beside the code before the
// session user wrote its own checkout (b2a01d0, built into a temporary directory per run), in the
// same run; an exec round trip beside raw dockerode and the docker CLI; a fan-out of 8 sessions,
// 4 at a time, beside 8 shell scripts, 4 at a time. Every part goes through bench-helper (load
// before and after, interleaved runs, min and median, ratios); whatever a run starts is removed
// in an untimed step, and at the end nothing the bench made is left (found by its labels).
// Needs a Docker engine. Run with `npm run bench -- sandbox`.
import { execFile, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createDockerBackend, createSession, defineProject, type Session } from "@bulkhead/sandbox";
import { ensureDocker, ensureTestImage } from "@bulkhead/test-utils";
import Docker from "dockerode";
import pLimit from "p-limit";
import { BENCH_RUN_LABEL, sweepBench } from "./lib/bench-containers.js";
import { begin, measure, pairedRatio, report, RUNS, type BenchCase, type Sample } from "./lib/bench-helper.js";
import { copyOf, leadRepository } from "./lib/lead-repo.js";
import { buildOldCode, oldCodeFailed, type OldCode } from "./lib/old-code.js";

const OLD_COMMIT = "b2a01d0";
const EXECS = Number(process.env.BENCH_EXECS ?? 100);
const RUN_ID = Date.now().toString(36);
const runLabel = `${BENCH_RUN_LABEL}=${RUN_ID}`;
const run = promisify(execFile);
const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]!;

const template = leadRepository(10_000);
const repos = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"].map((name) => ({ name, path: copyOf(template, `sandbox-${name}`) }));
// Session state, workspaces and the script's clones: all under here, removed at the end.
const scratch = fs.mkdtempSync(join(tmpdir(), "bulkhead-bench-sandbox-"));
const home = join(scratch, "home");

// The session start before files were written by the session user (a recursive chown after the
// checkout). When it no longer builds, the bench says so and keeps the shell baseline.
let oldCode: OldCode | undefined;
let old:
  | {
      createSession: (project: unknown, options: { home: string; tag: string; docker: Docker }) => Promise<Session>;
      defineProject: typeof defineProject;
    }
  | undefined;
let oldProblem = "";
try {
  oldCode = buildOldCode(OLD_COMMIT, ["core", "sandbox"]);
  old = await oldCode.load("sandbox");
} catch (error) {
  oldProblem = oldCodeFailed(OLD_COMMIT, error);
}

const engine = await ensureDocker();
const image = ensureTestImage();
const docker = new Docker();
const backend = createDockerBackend({ docker });
const cpuNote = "CPU: this process and its exited children (git, the docker CLI); not dockerd or the containers.";

// Sessions and script containers a case made, removed by its untimed `after`.
const live: Session[] = [];
const scriptContainers: string[] = [];
let scriptRun = 0;
const removeLive = async () => {
  for (const session of live.splice(0)) await session.remove({ force: true });
  if (scriptContainers.length > 0) execFileSync("docker", ["rm", "--force", ...scriptContainers.splice(0)], { stdio: "ignore" });
  fs.rmSync(join(scratch, "shell"), { recursive: true, force: true });
};

/** The shell baseline: clone each repo with hard links, branch, start a hardened container. */
async function startScript(chosen: readonly { name: string; path: string }[]): Promise<void> {
  const workspace = join(scratch, "shell", String(scriptRun++));
  const script = [
    `mkdir -p ${workspace}`,
    ...chosen.map(
      (repo) =>
        `git clone --quiet --local ${repo.path} ${workspace}/${repo.name} && git -C ${workspace}/${repo.name} checkout --quiet -b bench-${scriptRun}`,
    ),
    `docker run -d --label ${runLabel} --network none --cap-drop ALL --read-only -v ${workspace}:/workspace ${image} sh -c 'sleep 3600'`,
  ].join(" && ");
  scriptContainers.push((await run("bash", ["-c", script], { encoding: "utf8" })).stdout.trim());
}
const startOurs = async (chosen: { name: string; path: string }[]) => {
  live.push(
    await createSession(defineProject({ name: "bench", repos: chosen, image: { existing: image } }), { home, tag: image, backend }),
  );
};

const GOALS: Record<number, number> = { 1: 1.0, 3: 0.6, 6: 0.6 };
const SCRIPT = "shell: git clone --local + checkout -b, × repos; docker run -d";
try {
  // Session start at 1, 3 and 6 repos; a new order each round (the first start of a round pays
  // for a colder page cache).
  for (const count of [1, 3, 6]) {
    const chosen = repos.slice(0, count);
    const cases: BenchCase[] = [
      { label: SCRIPT, run: () => startScript(chosen), after: removeLive },
      { label: "this tree: createSession", run: () => startOurs(chosen), after: removeLive },
      ...(old
        ? [
            {
              label: `${OLD_COMMIT}: createSession`,
              run: async () => {
                live.push(
                  await old.createSession(old.defineProject({ name: "bench", repos: chosen, image: { existing: image } }), {
                    home,
                    tag: image,
                    docker,
                  }),
                );
              },
              after: removeLive,
            },
          ]
        : []),
    ];
    const mark = begin(`bench/sandbox: session start, ${count} repo${count > 1 ? "s" : ""} × 10,000 files`);
    const samples = await measure(cases, RUNS, { order: "rotate" });
    const [script, ours, before] = samples as [Sample, Sample, Sample | undefined];
    const ratio = ours.median / script.median;
    report(mark, samples, {
      baseline: SCRIPT,
      extra: before ? { [`÷ ${OLD_COMMIT}`]: (sample) => `${(sample.median / before.median).toFixed(2)}×` } : {},
      notes: [
        ...(oldProblem ? [oldProblem] : []),
        `paired (median of the per-round ratios): this tree ÷ shell ${pairedRatio(ours, script).toFixed(2)}×${before ? `, this tree ÷ ${OLD_COMMIT} ${pairedRatio(ours, before).toFixed(2)}×` : ""}`,
        `goal (issue 19): session start ≤ ${GOALS[count]!.toFixed(1)}× the shell script at ${count} repo${count > 1 ? "s" : ""}: ${ratio.toFixed(2)}× by medians, ${ratio <= GOALS[count]! ? "met" : "NOT met"}`,
        cpuNote,
      ],
    });
  }

  // Exec round trips on one session, the variants in a fresh random order each round (the
  // daemon's state after one exec shifts the next by a few per cent).
  const session = await createSession(defineProject({ name: "bench-exec", repos: [repos[0]!], image: { existing: image } }), {
    home,
    tag: image,
    backend,
  });
  live.push(session);
  const rawExec = async (hijack: boolean) => {
    const exec = await docker.getContainer(session.instance).exec({ Cmd: ["true"], AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({ hijack, stdin: false });
    await new Promise((resolve) => stream.on("end", resolve).resume());
    await exec.inspect();
  };
  const execCases: BenchCase[] = [
    { label: "raw dockerode exec (create, start hijacked, read, inspect)", run: () => rawExec(true) },
    { label: "bulkhead session.exec", run: () => session.exec(["true"]) },
    // The same without the connection upgrade: how session.exec reads a command's output.
    { label: "raw dockerode exec, plain stream (as session.exec reads)", run: () => rawExec(false) },
    { label: "docker exec (CLI)", run: () => execFileSync("docker", ["exec", `bulkhead-${session.id}`, "true"]) },
  ];
  await measure(execCases, 5); // warm-up, untimed
  const execMark = begin(`bench/sandbox: exec round trip (\`true\`), ${EXECS} rounds`);
  const execSamples = await measure(execCases, EXECS, { order: "shuffle" });
  const [raw, ours, plain] = execSamples as [Sample, Sample, Sample];
  report(execMark, execSamples, {
    notes: [
      `paired (median of the per-round ratios) session.exec ÷ raw dockerode: ${pairedRatio(ours, raw).toFixed(3)}× (hijacked), ${pairedRatio(ours, plain).toFixed(3)}× (plain stream)`,
      cpuNote,
    ],
  });
  await removeLive();

  // Fan-out: 8 sessions of one repo, 4 at a time, beside 8 shell scripts, 4 at a time.
  const perStart = { ours: [] as number[], script: [] as number[] };
  const fanOut = (start: () => Promise<void>, into: number[]) => async () => {
    const limit = pLimit(4);
    await Promise.all(
      Array.from({ length: 8 }, () =>
        limit(async () => {
          const begun = process.hrtime.bigint();
          await start();
          into.push(Number(process.hrtime.bigint() - begun) / 1e6);
        }),
      ),
    );
  };
  const fanMark = begin("bench/sandbox: fan-out, 8 starts of 1 repo × 10,000 files, 4 at a time");
  const fanSamples = await measure(
    [
      { label: "shell script × 8, 4 at a time", run: fanOut(() => startScript([repos[0]!]), perStart.script), after: removeLive },
      { label: "createSession × 8, 4 at a time", run: fanOut(() => startOurs([repos[0]!]), perStart.ours), after: removeLive },
    ],
    RUNS,
    { order: "rotate" },
  );
  report(fanMark, fanSamples, {
    notes: [
      `per start (all runs): createSession p50 ${percentile(perStart.ours, 0.5).toFixed(0)} ms, p95 ${percentile(perStart.ours, 0.95).toFixed(0)} ms; shell script p50 ${percentile(perStart.script, 0.5).toFixed(0)} ms, p95 ${percentile(perStart.script, 0.95).toFixed(0)} ms`,
      cpuNote,
    ],
  });
} finally {
  await removeLive().catch(() => undefined);
  sweepBench({ home, runLabel, scratch, oldCode });
  await engine.stop();
}

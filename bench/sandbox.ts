// bench/sandbox: session start over 3 repos × 10k files beside a shell script doing the same
// (git clone --local × 3 + docker run -d); an exec round trip beside raw dockerode and the
// docker CLI; a fan-out of 8 sessions. Needs a Docker engine. Run with `npm run bench -- sandbox`.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { join } from "node:path";
import { createSession, defineProject, type Session } from "@bulkhead/sandbox";
import { ensureDocker, ensureTestImage } from "@bulkhead/test-utils";
import Docker from "dockerode";
import pLimit from "p-limit";

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const EXECS = Number(process.env.BENCH_EXECS ?? 100);
const data = join(import.meta.dirname, ".data");
const template = join(data, "lead-10000");
const engine = await ensureDocker();
const image = ensureTestImage();
const docker = new Docker();
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]!;
const since = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;

if (!fs.existsSync(join(template, ".done"))) {
  throw new Error(`run \`npm run bench -- git-lead\` first: it generates the 10k-file repository this benchmark copies (${template})`);
}
const repos = ["alpha", "beta", "gamma"].map((name) => {
  const path = join(data, `sandbox-${name}`);
  if (!fs.existsSync(path)) fs.cpSync(template, path, { recursive: true });
  return { name, path };
});
const home = join(data, "sandbox-home");
const project = defineProject({ name: "bench", repos, image: { existing: image } });

// Session start vs the shell baseline.
const ours: number[] = [];
const shell: number[] = [];
const startOurs = async () => {
  const start = process.hrtime.bigint();
  const session = await createSession(project, { home, tag: image, docker });
  ours.push(since(start));
  await session.remove({ force: true });
};
const startShell = async (run: number) => {
  const workspace = join(data, `sandbox-shell-${run}`);
  fs.rmSync(workspace, { recursive: true, force: true });
  const script = [
    `mkdir -p ${workspace}`,
    ...repos.map(
      (repo) =>
        `git clone --quiet --local ${repo.path} ${workspace}/${repo.name} && git -C ${workspace}/${repo.name} checkout --quiet -b bench-${run}`,
    ),
    `docker run -d --network none --cap-drop ALL --read-only -v ${workspace}:/workspace ${image} sh -c 'sleep 3600'`,
  ].join(" && ");
  const start = process.hrtime.bigint();
  const id = execFileSync("bash", ["-c", script], { encoding: "utf8" }).trim();
  shell.push(since(start));
  execFileSync("docker", ["rm", "--force", id], { stdio: "ignore" });
  fs.rmSync(workspace, { recursive: true, force: true });
};
for (let run = 0; run < RUNS; run++) {
  // Alternate who goes first: the first copy of a round pays for a colder page cache.
  if (run % 2 === 0) await startOurs().then(() => startShell(run));
  else await startShell(run).then(startOurs);
}

// Exec round trips.
const session: Session = await createSession(defineProject({ name: "bench-exec", repos: [repos[0]!], image: { existing: image } }), {
  home,
  tag: image,
  docker,
});
const execTimes = { ours: [] as number[], raw: [] as number[], rawPlain: [] as number[], cli: [] as number[] };
const execVariants: Record<keyof typeof execTimes, () => Promise<unknown>> = {
  ours: () => session.exec(["true"]),
  raw: async () => {
    const exec = await session.container.exec({ Cmd: ["true"], AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({ hijack: true, stdin: false });
    await new Promise((resolve) => stream.on("end", resolve).resume());
    await exec.inspect();
  },
  // The same without the connection upgrade: how session.exec reads a command's output.
  rawPlain: async () => {
    const exec = await session.container.exec({ Cmd: ["true"], AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({ hijack: false, stdin: false });
    await new Promise((resolve) => stream.on("end", resolve).resume());
    await exec.inspect();
  },
  cli: async () => execFileSync("docker", ["exec", `bulkhead-${session.id}`, "true"]),
};
const variantNames = Object.keys(execVariants) as (keyof typeof execTimes)[];
for (let warm = 0; warm < 5; warm++) for (const name of variantNames) await execVariants[name]();
const pairedRatios: number[] = [];
const pairedPlain: number[] = [];
for (let index = 0; index < EXECS; index++) {
  // A fresh random order each round, so no variant always follows another (the daemon's
  // state after one exec shifts the next by a few per cent).
  for (const name of [...variantNames].sort(() => Math.random() - 0.5)) {
    const start = process.hrtime.bigint();
    await execVariants[name]();
    execTimes[name].push(since(start));
  }
  // Both variants of a round ran within a fraction of a second of each other: their ratio is
  // less exposed to the machine's drift than the ratio of two medians.
  pairedRatios.push(execTimes.ours.at(-1)! / execTimes.raw.at(-1)!);
  pairedPlain.push(execTimes.ours.at(-1)! / execTimes.rawPlain.at(-1)!);
}
await session.remove({ force: true });

// Fan-out of 8 sessions, 4 at a time.
const small = defineProject({ name: "bench-fanout", repos: [repos[0]!], image: { existing: image } });
const limit = pLimit(4);
const each: number[] = [];
const wallStart = process.hrtime.bigint();
const sessions = await Promise.all(
  Array.from({ length: 8 }, () =>
    limit(async () => {
      const start = process.hrtime.bigint();
      const created = await createSession(small, { home, tag: image, docker });
      each.push(since(start));
      return created;
    }),
  ),
);
const wall = since(wallStart);
for (const created of sessions) await created.remove({ force: true });
await engine.stop();

console.log(
  `\nbench/sandbox: median of ${RUNS} session starts (3 repos × 10,000 files), ${EXECS} exec round trips, Node ${process.version}`,
);
console.log("| session start | median ms | vs shell |");
console.log("|---|---:|---:|");
console.log(`| shell: git clone --local × 3 + docker run -d | ${median(shell).toFixed(0)} | 1.00x |`);
console.log(`| bulkhead createSession | ${median(ours).toFixed(0)} | ${(median(ours) / median(shell)).toFixed(2)}x |`);
console.log("\n| exec round trip (`true`) | median ms | vs raw dockerode |");
console.log("|---|---:|---:|");
console.log(`| raw dockerode exec | ${median(execTimes.raw).toFixed(1)} | 1.00x |`);
console.log(
  `| bulkhead session.exec | ${median(execTimes.ours).toFixed(1)} | ${(median(execTimes.ours) / median(execTimes.raw)).toFixed(2)}x |`,
);
console.log(
  `| raw dockerode exec, plain stream (as session.exec) | ${median(execTimes.rawPlain).toFixed(1)} | ${(median(execTimes.rawPlain) / median(execTimes.raw)).toFixed(2)}x |`,
);
console.log(`| docker exec (CLI) | ${median(execTimes.cli).toFixed(1)} | ${(median(execTimes.cli) / median(execTimes.raw)).toFixed(2)}x |`);
console.log(
  `\nexec, median of the per-round ratios session.exec / raw dockerode: ${median(pairedRatios).toFixed(3)}x (hijacked), ${median(pairedPlain).toFixed(3)}x (plain stream)`,
);
console.log(
  `\nfan-out: 8 sessions, 4 at a time: wall ${wall.toFixed(0)} ms, per session p50 ${percentile(each, 0.5).toFixed(0)} ms, p95 ${percentile(each, 0.95).toFixed(0)} ms`,
);

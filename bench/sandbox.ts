// bench/sandbox: session start over 1, 3 and 6 repos × 10k files beside a shell script doing the
// same (git clone --local × N + docker run -d) and beside the code before the session user wrote
// its own checkout (b2a01d0), in the same run; an exec round trip beside raw dockerode and the
// docker CLI; a fan-out of 8 sessions. Needs a Docker engine. Run with `npm run bench -- sandbox`.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createDockerBackend, createSession, defineProject, type Session } from "@bulkhead/sandbox";
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
const backend = createDockerBackend({ docker });
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]!;
const since = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;

if (!fs.existsSync(join(template, ".done"))) {
  throw new Error(`run \`npm run bench -- git-lead\` first: it generates the 10k-file repository this benchmark copies (${template})`);
}
const names = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"];
const repos = names.map((name) => {
  const path = join(data, `sandbox-${name}`);
  if (!fs.existsSync(path)) fs.cpSync(template, path, { recursive: true });
  return { name, path };
});
const home = join(data, "sandbox-home");

// The session start before files were written by the session user (a recursive chown after the
// checkout), built once from its commit into a temporary directory, measured in the same run.
const OLD_COMMIT = "b2a01d0";
const root = join(import.meta.dirname, "..");
const oldDir = join(tmpdir(), `bulkhead-bench-sandbox-${OLD_COMMIT}`);
if (!fs.existsSync(join(oldDir, ".built"))) {
  const sh = (cwd: string, command: string, args: string[]) => execFileSync(command, args, { cwd, stdio: ["ignore", "pipe", "inherit"] });
  fs.rmSync(oldDir, { recursive: true, force: true });
  sh(root, "git", ["worktree", "prune"]);
  sh(root, "git", ["worktree", "add", "--detach", "--force", oldDir, OLD_COMMIT]);
  fs.symlinkSync(join(root, "node_modules"), join(oldDir, "node_modules"));
  for (const name of ["core", "sandbox"]) sh(join(oldDir, "packages", name), "npx", ["tsup", "--no-dts"]);
  fs.mkdirSync(join(oldDir, "packages", "sandbox", "node_modules", "@bulkhead"), { recursive: true });
  fs.symlinkSync(join(oldDir, "packages", "core"), join(oldDir, "packages", "sandbox", "node_modules", "@bulkhead", "core"));
  fs.writeFileSync(join(oldDir, ".built"), "");
}
const old = (await import(join(oldDir, "packages", "sandbox", "dist", "index.js"))) as {
  createSession: (project: unknown, options: { home: string; tag: string; docker: Docker }) => Promise<Session>;
  defineProject: typeof defineProject;
};

// Session start vs the shell baseline and vs the code before, at 1, 3 and 6 repos.
const load = () =>
  loadavg()
    .map((value) => value.toFixed(2))
    .join(" ");
const loadBefore = load();
type Side = "ours" | "old" | "shell";
const starts: Record<number, Record<Side, number[]>> = {};
const startSession = async (side: "ours" | "old", count: number) => {
  const chosen = repos.slice(0, count);
  const project =
    side === "ours"
      ? defineProject({ name: "bench", repos: chosen, image: { existing: image } })
      : old.defineProject({ name: "bench", repos: chosen, image: { existing: image } });
  const start = process.hrtime.bigint();
  const session =
    side === "ours"
      ? await createSession(project, { home, tag: image, backend })
      : await old.createSession(project, { home, tag: image, docker });
  starts[count]![side].push(since(start));
  await session.remove({ force: true });
};
const startShell = async (count: number, run: number) => {
  const workspace = join(data, `sandbox-shell-${run}`);
  fs.rmSync(workspace, { recursive: true, force: true });
  const script = [
    `mkdir -p ${workspace}`,
    ...repos
      .slice(0, count)
      .map(
        (repo) =>
          `git clone --quiet --local ${repo.path} ${workspace}/${repo.name} && git -C ${workspace}/${repo.name} checkout --quiet -b bench-${run}`,
      ),
    `docker run -d --network none --cap-drop ALL --read-only -v ${workspace}:/workspace ${image} sh -c 'sleep 3600'`,
  ].join(" && ");
  const start = process.hrtime.bigint();
  const id = execFileSync("bash", ["-c", script], { encoding: "utf8" }).trim();
  starts[count]!.shell.push(since(start));
  execFileSync("docker", ["rm", "--force", id], { stdio: "ignore" });
  fs.rmSync(workspace, { recursive: true, force: true });
};
for (const count of [1, 3, 6]) {
  starts[count] = { ours: [], old: [], shell: [] };
  for (let run = 0; run < RUNS; run++) {
    // A new order each round (rotated): the first start of a round pays for a colder page cache.
    const order: (() => Promise<void>)[] = [
      () => startSession("ours", count),
      () => startSession("old", count),
      () => startShell(count, run),
    ];
    for (let index = 0; index < order.length; index++) await order[(index + run) % order.length]!();
  }
}
const loadAfter = load();

// Exec round trips.
const session: Session = await createSession(defineProject({ name: "bench-exec", repos: [repos[0]!], image: { existing: image } }), {
  home,
  tag: image,
  backend,
});
const execTimes = { ours: [] as number[], raw: [] as number[], rawPlain: [] as number[], cli: [] as number[] };
const execVariants: Record<keyof typeof execTimes, () => Promise<unknown>> = {
  ours: () => session.exec(["true"]),
  raw: async () => {
    const exec = await docker.getContainer(session.instance).exec({ Cmd: ["true"], AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({ hijack: true, stdin: false });
    await new Promise((resolve) => stream.on("end", resolve).resume());
    await exec.inspect();
  },
  // The same without the connection upgrade: how session.exec reads a command's output.
  rawPlain: async () => {
    const exec = await docker.getContainer(session.instance).exec({ Cmd: ["true"], AttachStdout: true, AttachStderr: true });
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
      const created = await createSession(small, { home, tag: image, backend });
      each.push(since(start));
      return created;
    }),
  ),
);
const wall = since(wallStart);
for (const created of sessions) await created.remove({ force: true });
await engine.stop();

console.log(
  `\nbench/sandbox: ${RUNS} session starts per side (repos of 10,000 files), ${EXECS} exec round trips, Node ${process.version}; load average before ${loadBefore}, after ${loadAfter}${Number(loadBefore.split(" ")[0]) > 1.5 ? " (UNDER LOAD)" : ""}`,
);
console.log(
  `| session start | repos | shell median ms | ${OLD_COMMIT} median ms | this tree median (min) ms | vs shell | vs ${OLD_COMMIT} |`,
);
console.log("|---|---:|---:|---:|---:|---:|---:|");
for (const count of [1, 3, 6]) {
  const { ours, old: before, shell } = starts[count]!;
  console.log(
    `| createSession | ${count} | ${median(shell).toFixed(0)} | ${median(before).toFixed(0)} | ${median(ours).toFixed(0)} (${Math.min(...ours).toFixed(0)}) | ${(median(ours) / median(shell)).toFixed(2)}x | ${(median(ours) / median(before)).toFixed(2)}x |`,
  );
}
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

// bench/git-lead: per-commit latency on a generated repository (BENCH_LEAD_FILES, default 10k; the
// issue-19 figures use 100k). The lead (blobs, trees along the changed path, commit,
// compare-and-swap, index entries for that path, journal and queue included) beside `git add` +
// `git commit` in the same run; the first commit of each lead apart from the steady ones; naive
// isomorphic-git `add` + `commit` as a reference line up to 20k files. `npm run bench -- git-lead`.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { join } from "node:path";
import { createCommitLead } from "@bulkhead/git-lead";
import git from "isomorphic-git";
import { begin, cpuTime, median, report, RUNS, toSample } from "./lib/bench-helper.js";
import { BENCH_GIT_ENV, leadRepository } from "./lib/lead-repo.js";

const FILES = Number(process.env.BENCH_LEAD_FILES ?? 10_000);
const COMMITS = Number(process.env.BENCH_LEAD_COMMITS ?? 20);
const data = join(import.meta.dirname, ".data");
const template = leadRepository(FILES);
const author = { name: "Bench", email: "bench@example.com" };
const env = BENCH_GIT_ENV;
const sh = (cwd: string, args: string[]) => execFileSync("git", args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });

const fresh = (name: string) => {
  const dir = join(data, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.cpSync(template, dir, { recursive: true });
  return dir;
};
// A file the template has (pkg = index / 100): every commit changes one tracked file.
const touch = (dir: string, round: number, index: number) => {
  const path = `src/pkg${Math.floor(index / 100)}/file${index}.ts`;
  fs.writeFileSync(join(dir, path), `export const value${index} = ${index}; // round ${round}\n`);
  return path;
};
const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;

// Wall and CPU ms per commit (CPU: this process and its exited children, so git's own processes count).
const cli: number[] = [];
const first: number[] = [];
const steady: number[] = [];
const iso: number[] = [];
const cpu = { cli: [] as number[], first: [] as number[], steady: [] as number[], iso: [] as number[] };
// isomorphic-git rewrites its whole index per add: a reference line at 10k files, hours at 100k.
const withIso = FILES <= 20_000;
const mark = begin(
  `bench/git-lead: ${FILES.toLocaleString("en-US")}-file repository, ${RUNS} runs of ${COMMITS} commits of one changed file each`,
);
for (let run = 0; run < RUNS; run++) {
  const cliDir = fresh("lead-cli");
  const leadDir = fresh("lead-bulkhead");
  const isoDir = withIso ? fresh("lead-isogit") : "";
  const lead = await createCommitLead({ dir: leadDir, author });
  const cache = {};
  for (let round = 0; round < COMMITS; round++) {
    const index = (round * 7919 + run) % FILES;
    let path = touch(cliDir, round, index);
    let cpuStart = cpuTime();
    let start = process.hrtime.bigint();
    sh(cliDir, ["add", "--", path]);
    sh(cliDir, ["commit", "--quiet", "-m", `round ${round}`]);
    cli.push(ms(start));
    cpu.cli.push(cpuTime() - cpuStart);

    path = touch(leadDir, round, index);
    cpuStart = cpuTime();
    start = process.hrtime.bigint();
    const result = await lead.submit({ issueId: `BENCH-${round}`, worker: "bench", files: [path], message: `round ${round}` });
    // The first commit of a lead reads the index (and runs cold code); later ones reuse what it read.
    (round === 0 ? first : steady).push(ms(start));
    (round === 0 ? cpu.first : cpu.steady).push(cpuTime() - cpuStart);
    if (result.status !== "committed") throw new Error(`lead did not commit: ${JSON.stringify(result)}`);

    if (withIso && round < Math.min(COMMITS, 10)) {
      path = touch(isoDir, round, index);
      cpuStart = cpuTime();
      start = process.hrtime.bigint();
      await git.add({ fs, dir: isoDir, filepath: path, cache });
      await git.commit({ fs, dir: isoDir, message: `round ${round}`, author, cache });
      iso.push(ms(start));
      cpu.iso.push(cpuTime() - cpuStart);
    }
  }
  await lead.close();
  if (sh(leadDir, ["status", "--porcelain"]).toString().trim() !== "") throw new Error("the lead left git status dirty");
  sh(leadDir, ["fsck", "--strict", "--full", "--no-progress"]);
}

const ratios = report(
  mark,
  [
    toSample("git add + git commit (CLI), per commit", cli, cpu.cli),
    toSample("bulkhead lead.submit, first commit of a lead", first, cpu.first),
    toSample("bulkhead lead.submit, steady (later commits)", steady, cpu.steady),
    ...(withIso ? [toSample(`isomorphic-git add + commit (naive, ${iso.length} commits)`, iso, cpu.iso)] : []),
  ],
  { baseline: "git add + git commit (CLI), per commit" },
);
const firstOverSteady = ratios["bulkhead lead.submit, first commit of a lead"]! / ratios["bulkhead lead.submit, steady (later commits)"]!;
console.log(
  `first commit ÷ steady commit (medians): ${firstOverSteady.toFixed(2)}× by wall time, ${(median(cpu.first) / median(cpu.steady)).toFixed(2)}× by CPU time`,
);

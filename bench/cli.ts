// bench/cli: start-up of the `bulkhead` command line beside `node -e 0` in the same run:
// `bulkhead --help` (no package loaded: every command imports what it needs when it runs), and
// `bulkhead scope resolve` on a small repo (20 files), warm (its caches filled by an earlier run:
// `@bulkhead/core/scope`, the cached spec and counts, no tokenizer) and cold (no cache: core's
// full entry, @bulkhead/budget and gpt-tokenizer load, 20 files counted). Runs the built CLI
// (`npm run build` first). Run with `npm run bench -- cli`; BENCH_RUNS sets the runs (at least 10 here).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { begin, measure, report, RUNS } from "./lib/bench-helper.js";

const runs = Math.max(10, RUNS);
const bin = join(import.meta.dirname, "..", "packages", "cli", "dist", "bin.js");
if (!existsSync(bin)) throw new Error(`${bin} is missing: run npm run build first`);

const dir = mkdtempSync(join(tmpdir(), "bench-cli-"));
const home = join(dir, "home");
const repo = join(dir, "api");
mkdirSync(join(repo, "src"), { recursive: true });
for (let index = 0; index < 20; index++)
  writeFileSync(join(repo, "src", `module-${index}.ts`), `export const value${index} = ${index};\n`.repeat(40));
const spec = join(dir, "spec.yaml");
writeFileSync(
  spec,
  "task: bench\ncontext_scope:\n  repos:\n    - name: api\n      paths: ['src/']\n  max_files: 100\n  max_tokens: 100000\nownership:\n  primary_repo: api\n",
);
// Files changed in the last 2 s are never persisted in the scope cache (their timestamps could
// still hide a change): let the tree settle, as a repository being worked on mostly is.
await sleep(2_100);

const cwd = join(import.meta.dirname, "..", "packages", "cli");
const node =
  (args: string[], env: NodeJS.ProcessEnv = {}) =>
  () =>
    execFileSync(process.execPath, args, { stdio: "ignore", cwd, env: { ...process.env, BULKHEAD_HOME: home, ...env } });
const resolve = [bin, "scope", "resolve", spec, "--repo", `api=${repo}`, "--json"];
node(resolve)(); // fills the caches for the warm case

const mark = begin("bench/cli: start-up of the command line beside node -e 0");
const samples = await measure(
  [
    { label: "node -e 0 (baseline)", run: node(["-e", "0"]) },
    { label: "bulkhead --help", run: node([bin, "--help"]) },
    { label: "bulkhead scope resolve (20 files), warm", run: node(resolve) },
    { label: "bulkhead scope resolve (20 files), cold", run: node(resolve, { BULKHEAD_SCOPE_CACHE: "off" }) },
    // Where a cold run's time goes: core's full entry (zod, yaml), against the scope entry alone.
    { label: "  import @bulkhead/core/scope", run: node(["--input-type=module", "-e", "await import('@bulkhead/core/scope')"]) },
    { label: "  import @bulkhead/core", run: node(["--input-type=module", "-e", "await import('@bulkhead/core')"]) },
  ],
  runs,
);
rmSync(dir, { recursive: true, force: true });
report(mark, samples, { baseline: "node -e 0 (baseline)", notes: [`Node ${process.version}; ${runs} runs of each case`] });

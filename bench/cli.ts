// bench/cli: start-up of the `bulkhead` command line beside `node -e 0` in the same run:
// `bulkhead --help` (no package loaded: every command imports what it needs when it runs) and
// `bulkhead scope resolve` on a small repo (core, budget and tiktoken loaded, 20 files counted).
// Runs the built CLI (`npm run build` first). Run with `npm run bench -- cli`.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const bin = join(import.meta.dirname, "..", "packages", "cli", "dist", "bin.js");
if (!existsSync(bin)) throw new Error(`${bin} is missing: run npm run build first`);

const dir = mkdtempSync(join(tmpdir(), "bench-cli-"));
const repo = join(dir, "api");
mkdirSync(join(repo, "src"), { recursive: true });
for (let index = 0; index < 20; index++)
  writeFileSync(join(repo, "src", `module-${index}.ts`), `export const value${index} = ${index};\n`.repeat(40));
const spec = join(dir, "spec.yaml");
writeFileSync(
  spec,
  "task: bench\ncontext_scope:\n  repos:\n    - name: api\n      paths: ['src/']\n  max_files: 100\n  max_tokens: 100000\nownership:\n  primary_repo: api\n",
);

const cases: [string, string[]][] = [
  ["node -e 0 (baseline)", ["-e", "0"]],
  ["bulkhead --help", [bin, "--help"]],
  ["bulkhead scope resolve (20 files)", [bin, "scope", "resolve", spec, "--repo", `api=${repo}`, "--json"]],
  // Where scope resolve's time goes: loading core (zod, yaml), and tiktoken's o200k tables on the first count.
  ["  of which: import @bulkhead/core", ["--input-type=module", "-e", "await import('@bulkhead/core')"]],
  [
    "  of which: core + first o200k count",
    [
      "--input-type=module",
      "-e",
      "await import('@bulkhead/core'); const { createTokenCounter } = await import('@bulkhead/budget'); await createTokenCounter({ encoding: 'o200k_base' }).count('x')",
    ],
  ],
];
const times = new Map<string, number[]>(cases.map(([name]) => [name, []]));
// Interleaved, so a busy moment of the machine falls on every case alike.
for (let run = 0; run < RUNS; run++)
  for (const [name, args] of cases) {
    const start = process.hrtime.bigint();
    execFileSync(process.execPath, args, { stdio: "ignore", cwd: join(import.meta.dirname, "..", "packages", "cli") });
    times.get(name)!.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
rmSync(dir, { recursive: true, force: true });

const median = (values: number[]) => [...values].sort((left, right) => left - right)[Math.floor(values.length / 2)]!;
const baseline = median(times.get(cases[0]![0])!);
console.log(`bench/cli: median of ${RUNS} runs each, interleaved (Node ${process.version})`);
for (const [name] of cases) {
  const value = median(times.get(name)!);
  console.log(`  ${name.padEnd(36)} ${value.toFixed(1).padStart(7)} ms  ${(value / baseline).toFixed(2)}× node -e 0`);
}

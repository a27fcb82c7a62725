// `npm run bench [-- name...]`: runs the benchmarks in bench/ (all, or the ones named). Each one
// takes its figures through bench/lib/bench-helper.ts (load average before and after, at least 3
// runs, min and median, ratios to a baseline in the same run, UNDER LOAD marks); this runner also
// prints the load around each bench, so a figure can always be read beside the load it was taken under.
//
// The benches run under the newest Node line of the test matrix (24), fetched like the tests'
// when the local Node is another major: the figures are for a Node bulkhead supports.
// `BENCH_NODE=local` runs them under this Node, `BENCH_NODE=22` under that line.
import { readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism, loadavg } from "node:os";
import { NODE_MATRIX, nodeBinary } from "./node-versions.mjs";
import { run } from "./run.mjs";

const wanted = process.env.BENCH_NODE ?? String(Math.max(...NODE_MATRIX));
const node = wanted === "local" ? process.execPath : nodeBinary(Number(wanted));
const tsx = createRequire(import.meta.url).resolve("tsx/cli");

const all = readdirSync(new URL("../bench", import.meta.url))
  .filter((name) => name.endsWith(".ts"))
  .map((name) => name.slice(0, -3));
const chosen = process.argv.slice(2).length > 0 ? process.argv.slice(2) : all;
const cores = availableParallelism();
const load = () =>
  loadavg()
    .map((value) => value.toFixed(2))
    .join(" ");
for (const name of chosen) {
  if (!all.includes(name)) throw new Error(`no benchmark "${name}": choose from ${all.join(", ")}`);
  const before = loadavg()[0];
  console.error(`\n[bench] ${name}: load average before ${load()} on ${cores} cores`);
  run(node, [tsx, "--tsconfig", "tsconfig.check.json", `bench/${name}.ts`]);
  const after = loadavg()[0];
  console.error(`[bench] ${name}: load average after ${load()}${Math.max(before, after) > cores ? " — UNDER LOAD" : ""}`);
}

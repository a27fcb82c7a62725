// `npm run bench [-- name...]`: runs the benchmarks in bench/ (all, or the ones named).
import { readdirSync } from "node:fs";
import { run } from "./run.mjs";

const all = readdirSync(new URL("../bench", import.meta.url))
  .filter((name) => name.endsWith(".ts"))
  .map((name) => name.slice(0, -3));
const chosen = process.argv.slice(2).length > 0 ? process.argv.slice(2) : all;
for (const name of chosen) {
  if (!all.includes(name)) throw new Error(`no benchmark "${name}": choose from ${all.join(", ")}`);
  run("npx", ["tsx", "--tsconfig", "tsconfig.check.json", `bench/${name}.ts`]);
}

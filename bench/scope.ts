// bench/scope: resolve a generated 100k-file tree, cold and warm (cache), beside a baseline
// in the same run: `git ls-files` to list the files, then a plain sequential read of each.
// Prints files/s, MB/s and the ratio to the baseline. Run with `npm run bench -- scope`.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createScopeCache, parseTaskSpec, resolveScope } from "@bulkhead/core";

const FILES = Number(process.env.BENCH_SCOPE_FILES ?? 100_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const root = join(import.meta.dirname, ".data", `tree-${FILES}`);

function generate(): void {
  if (existsSync(join(root, ".done"))) return;
  console.log(`generating ${FILES.toLocaleString("en-US")} files in ${root} ...`);
  const perDirectory = 100;
  for (let index = 0; index < FILES; index++) {
    const directory = join(root, "src", `pkg-${Math.floor(index / (perDirectory * 10))}`, `mod-${Math.floor(index / perDirectory) % 10}`);
    if (index % perDirectory === 0) mkdirSync(directory, { recursive: true });
    const body = `export const value${index} = ${index};\n`.repeat(8 + (index % 40));
    writeFileSync(join(directory, `file-${index}.ts`), body);
  }
  writeFileSync(join(root, ".gitignore"), "*.log\n");
  execFileSync("git", ["init", "--quiet", root]);
  writeFileSync(join(root, ".done"), "");
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

async function time(run: () => Promise<unknown> | unknown): Promise<number> {
  const start = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

generate();
const spec = parseTaskSpec(
  JSON.stringify({
    task: "bench",
    context_scope: { repos: [{ name: "tree", paths: ["src"] }], max_files: 1_000_000, max_tokens: 1_000_000_000 },
    ownership: { primary_repo: "tree" },
  }),
);

let bytes = 0;
let files = 0;
const baseline = () => {
  const listed = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z", "src"], {
    cwd: root,
    maxBuffer: 1 << 30,
  })
    .toString("utf8")
    .split("\0")
    .filter(Boolean);
  let tokens = 0;
  for (const path of listed) tokens += Math.ceil(readFileSync(join(root, path)).length / 4);
  return tokens;
};

const results: Record<string, number[]> = { baseline: [], cold: [], warm: [] };
for (let run = 0; run < RUNS; run++) {
  results.baseline!.push(await time(baseline));
  const cache = createScopeCache();
  results.cold!.push(
    await time(async () => {
      const scope = await resolveScope(spec, { repos: { tree: root }, cache });
      files = scope.totals.files;
      bytes = scope.totals.bytes;
    }),
  );
  results.warm!.push(await time(() => resolveScope(spec, { repos: { tree: root }, cache })));
}

const mb = bytes / 1024 / 1024;
const base = median(results.baseline!);
console.log(
  `\nbench/scope: ${files.toLocaleString("en-US")} files, ${mb.toFixed(1)} MB, median of ${RUNS} runs, Node ${process.version}, ${process.env.BENCH_MACHINE ?? "this machine"}`,
);
console.log("| run | ms | files/s | MB/s | vs baseline |");
console.log("|---|---:|---:|---:|---:|");
for (const [name, label] of [
  ["baseline", "baseline: git ls-files + sequential read"],
  ["cold", "bulkhead resolveScope, cold cache"],
  ["warm", "bulkhead resolveScope, warm cache"],
] as const) {
  const ms = median(results[name]!);
  console.log(
    `| ${label} | ${ms.toFixed(0)} | ${Math.round(files / (ms / 1000)).toLocaleString("en-US")} | ${(mb / (ms / 1000)).toFixed(1)} | ${(base / ms).toFixed(2)}x |`,
  );
}

// bench/scope: two parts, each beside its baseline in the same run (`npm run bench -- scope`).
//
// 1. A real repository (BENCH_SCOPE_REPO, a git work tree such as a clone of vercel/ai): the
//    `bulkhead scope resolve` process, cold (a new process, a new BULKHEAD_HOME: no cache), beside
//    the `repomix` process on the same tree (its persistent token cache off,
//    REPOMIX_TOKEN_CACHE=0); every file's count checked against tiktoken's encode_ordinary; warm
//    (resolveScope in process, and the CLI process on its persistent cache) beside `git ls-files`.
//    Skipped, with a note, when BENCH_SCOPE_REPO is not set.
// 2. A generated 100k-file tree (BENCH_SCOPE_FILES): resolveScope cold and warm beside
//    `git ls-files` + a sequential read of every file.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTokenCounter } from "@bulkhead/budget";
import { createScopeCache, parseTaskSpec, resolveScope, type TaskSpec } from "@bulkhead/core";
import { begin, measure, report, type Sample } from "./lib/bench-helper.js";

const FILES = Number(process.env.BENCH_SCOPE_FILES ?? 100_000);
const REAL = process.env.BENCH_SCOPE_REPO;
const rootDir = join(import.meta.dirname, "..");

const specFor = (name: string, path: string): TaskSpec =>
  parseTaskSpec(
    JSON.stringify({
      task: "bench",
      context_scope: { repos: [{ name, paths: [path] }], max_files: 1_000_000, max_tokens: 1_000_000_000 },
      ownership: { primary_repo: name },
    }),
  );

const gitLsFiles = (cwd: string, path = ".") =>
  execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z", path], { cwd, maxBuffer: 1 << 30 })
    .toString("utf8")
    .split("\0")
    .filter(Boolean);

async function realRepository(repo: string): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), "bench-scope-"));
  try {
    const specFile = join(work, "spec.json");
    writeFileSync(
      specFile,
      JSON.stringify({
        task: "bench",
        context_scope: { repos: [{ name: "repo", paths: ["."] }], max_files: 1_000_000, max_tokens: 1_000_000_000 },
        ownership: { primary_repo: "repo" },
      }),
    );
    // Issue 15: the whole repository against max_tokens 50,000, refused (exit 2) once certainly over.
    const overFile = join(work, "over.json");
    writeFileSync(
      overFile,
      JSON.stringify({
        task: "bench",
        context_scope: { repos: [{ name: "repo", paths: ["."] }], max_files: 1_000_000, max_tokens: 50_000 },
        ownership: { primary_repo: "repo" },
      }),
    );
    const bulkheadOut = join(work, "scope.json");
    // Cold: a new home per run, so no cache (the run pays for writing one); warm: the last run's.
    let home = join(work, "home-0");
    const bulkhead = () =>
      execFileSync(
        process.execPath,
        [join(rootDir, "packages/cli/dist/bin.js"), "scope", "resolve", specFile, "--repo", `repo=${repo}`, "--json"],
        { stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 30, env: { ...process.env, BULKHEAD_HOME: home } },
      );
    let homes = 0;
    const repomix = () =>
      execFileSync(
        process.execPath,
        [join(rootDir, "node_modules/repomix/bin/repomix.cjs"), "--quiet", "--output", join(work, "repomix.xml")],
        {
          cwd: repo,
          env: { ...process.env, REPOMIX_TOKEN_CACHE: "0" },
          stdio: "ignore",
        },
      );
    const mark = begin(`bench/scope, real repository ${repo}: whole processes, cold`);
    const samples = await measure([
      { label: "repomix (its token cache off)", run: repomix },
      {
        label: "bulkhead scope resolve --json",
        before: () => (home = join(work, `home-${++homes}`)),
        run: () => writeFileSync(bulkheadOut, bulkhead()),
      },
      {
        label: "bulkhead scope resolve, whole repo over max_tokens 50,000 (refused)",
        before: () => (home = join(work, `home-${++homes}`)),
        run: () => {
          const refused = spawnSync(
            process.execPath,
            [join(rootDir, "packages/cli/dist/bin.js"), "scope", "resolve", overFile, "--repo", `repo=${repo}`, "--json"],
            { maxBuffer: 1 << 30, env: { ...process.env, BULKHEAD_HOME: home } },
          );
          if (refused.status !== 2) throw new Error(`expected a refusal (exit 2), got ${refused.status}: ${refused.stderr}`);
        },
      },
    ]);

    // Every file's count, against tiktoken's encode_ordinary on the same bytes.
    const scope = JSON.parse(readFileSync(bulkheadOut, "utf8")) as {
      data?: { files: { path: string; tokens: number }[]; totals: { files: number; bytes: number; tokens: number } };
      files?: { path: string; tokens: number }[];
      totals?: { files: number; bytes: number; tokens: number };
    };
    const files = scope.data?.files ?? scope.files ?? [];
    const totals = scope.data?.totals ?? scope.totals!;
    using tiktoken = createTokenCounter({ encoding: "o200k_base", engine: "tiktoken", cacheSize: 0 });
    const mismatched = files.filter((file) => tiktoken.count(readFileSync(join(repo, file.path), "utf8")) !== file.tokens);

    report(mark, samples, {
      baseline: "repomix (its token cache off)",
      extra: { "files/s": (sample: Sample) => Math.round(totals.files / (sample.median / 1000)).toLocaleString("en-US") },
      notes: [
        `${totals.files.toLocaleString("en-US")} files, ${(totals.bytes / 1024 / 1024).toFixed(1)} MB, ${totals.tokens.toLocaleString("en-US")} o200k tokens; ` +
          `counts equal to tiktoken encode_ordinary on ${files.length - mismatched.length}/${files.length} files` +
          (mismatched.length > 0
            ? ` — MISMATCH: ${mismatched
                .slice(0, 5)
                .map((file) => file.path)
                .join(", ")}`
            : ""),
      ],
    });

    using counter = createTokenCounter({ encoding: "o200k_base" });
    const cache = createScopeCache();
    const spec = specFor("repo", ".");
    await resolveScope(spec, { repos: { repo }, counter, cache });
    const warmMark = begin(`bench/scope, real repository ${repo}: warm (cache filled) beside git ls-files`);
    report(
      warmMark,
      await measure([
        { label: "git ls-files --cached --others --exclude-standard", run: () => gitLsFiles(repo) },
        { label: "bulkhead resolveScope, warm (in process)", run: () => resolveScope(spec, { repos: { repo }, counter, cache }) },
        // A new process on the persistent cache the last cold run wrote: no tokenizer loads.
        { label: "bulkhead scope resolve --json, warm (a process)", run: bulkhead },
      ]),
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function generate(root: string): void {
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

async function syntheticTree(): Promise<void> {
  const root = join(import.meta.dirname, ".data", `tree-${FILES}`);
  generate(root);
  const spec = specFor("tree", "src");
  let files = 0;
  let bytes = 0;
  const baseline = () => {
    let total = 0;
    for (const path of gitLsFiles(root, "src")) total += readFileSync(join(root, path)).length;
    return total;
  };
  let cache = createScopeCache();
  const mark = begin(`bench/scope, generated tree of ${FILES.toLocaleString("en-US")} files (bytes/4 counter)`);
  const samples = await measure([
    { label: "git ls-files + sequential read", run: baseline },
    {
      label: "bulkhead resolveScope, cold cache",
      before: () => (cache = createScopeCache()),
      run: async () => {
        const scope = await resolveScope(spec, { repos: { tree: root }, cache });
        files = scope.totals.files;
        bytes = scope.totals.bytes;
      },
    },
    { label: "bulkhead resolveScope, warm cache", run: () => resolveScope(spec, { repos: { tree: root }, cache }) },
  ]);
  report(mark, samples, {
    baseline: "git ls-files + sequential read",
    extra: {
      "files/s": (sample: Sample) => Math.round(files / (sample.median / 1000)).toLocaleString("en-US"),
      "MB/s": (sample: Sample) => (bytes / 1024 / 1024 / (sample.median / 1000)).toFixed(1),
    },
  });
}

if (REAL) await realRepository(REAL);
else
  console.log(
    "bench/scope: BENCH_SCOPE_REPO not set, skipping the real-repository part (set it to a git work tree, e.g. a clone of vercel/ai)",
  );
if (process.env.BENCH_SCOPE_SKIP_SYNTHETIC !== "1") await syntheticTree();

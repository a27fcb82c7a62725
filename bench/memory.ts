// bench/memory: select project memory for one task's scope out of 10,000 entries, beside a plain
// filter over the same entries in the same run (accepted, unexpired, for a scope repo or the
// workspace: what a free-form memory file with a grep gives). Also times listing the entries
// from their files. Prints the median over runs of the time per call (batches of 20 calls, interleaved) and the ratio to the plain filter.
// Run with `npm run bench -- memory`.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTokenCounter } from "@bulkhead/budget";
import { createByteEstimateCounter, parseTaskSpec, type ResolvedScope } from "@bulkhead/core";
import { createFileMemoryStore, renderMemoryEntry, selectMemory, type MemoryEntry } from "@bulkhead/memory";

const ENTRIES = Number(process.env.BENCH_MEMORY_ENTRIES ?? 10_000);
// Each run is a few milliseconds: many interleaved runs, so a busy neighbour on a shared machine moves the median little.
const RUNS = Number(process.env.BENCH_RUNS ?? 15);
/** Calls per timed batch. */
const BATCH = Number(process.env.BENCH_MEMORY_BATCH ?? 20);
const REPOS = Array.from({ length: 20 }, (_, index) => `repo-${index}`);
const PATHS = ["src", "src/middleware", "src/routes", "src/routes/user.ts", "lib", "docs", "test"];

/** A deterministic pseudo-random sequence, so every run measures the same entries. */
let seed = 42;
const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;

function makeEntries(): MemoryEntry[] {
  const entries: MemoryEntry[] = [];
  for (let index = 0; index < ENTRIES; index++) {
    const roll = random();
    const applies: MemoryEntry["applies"] =
      roll < 0.15
        ? "workspace"
        : Array.from({ length: 1 + Math.floor(random() * 2) }, () => pick(REPOS))
            .filter((repo, at, list) => list.indexOf(repo) === at)
            .map((repo) => ({ repo, paths: random() < 0.6 ? [pick(PATHS)] : [] }));
    const day = String(1 + Math.floor(random() * 28)).padStart(2, "0");
    entries.push({
      id: `m-${index.toString(16).padStart(12, "0")}`,
      kind: pick(["decision", "learning", "convention"] as const),
      status: random() < 0.7 ? "accepted" : "proposed",
      title: `Entry ${index}: ${"keep the rate limiter in one middleware, shared across instances ".slice(0, 20 + Math.floor(random() * 60))}`,
      body: random() < 0.5 ? "" : "Context: the limiter keeps its counters in Redis.\nWhy it matters: a restart must not reset the limits.",
      applies,
      source: { kind: "handover", ref: `handover-${index % 300}`, by: "agent@bench" },
      createdAt: `2026-11-${day}T10:00:00.000Z`,
      updatedAt: `2026-11-${day}T10:00:00.000Z`,
      ...(random() < 0.05 ? { expiresAt: "2026-11-15T00:00:00.000Z" } : {}),
    });
  }
  return entries;
}

const entries = makeEntries();
const spec = parseTaskSpec(
  JSON.stringify({
    task: "bench",
    context_scope: {
      repos: [
        { name: "repo-3", paths: ["src/middleware", "src/routes"] },
        { name: "repo-7", paths: ["lib"] },
      ],
      max_files: 10_000,
      max_tokens: 200_000,
    },
    ownership: { primary_repo: "repo-3" },
  }),
);
// A resolved scope's files, as resolveScope would list them (the selection reads only files and totals).
const files = [
  ...Array.from({ length: 400 }, (_, index) => ({ repo: "repo-3", path: `src/middleware/m${index}.ts`, bytes: 400, tokens: 100 })),
  ...Array.from({ length: 400 }, (_, index) => ({ repo: "repo-3", path: `src/routes/r${index}.ts`, bytes: 400, tokens: 100 })),
  { repo: "repo-3", path: "src/routes/user.ts", bytes: 400, tokens: 100 },
  ...Array.from({ length: 200 }, (_, index) => ({ repo: "repo-7", path: `lib/l${index}.ts`, bytes: 400, tokens: 100 })),
];
const scope = { files, totals: { files: files.length, bytes: files.length * 400, tokens: files.length * 100 } } as Pick<
  ResolvedScope,
  "files" | "totals"
>;
const now = new Date("2026-12-01T00:00:00.000Z");
const scopeRepos = new Set(spec.contextScope.repos.map((repo) => repo.name));

/** The baseline: keep what is accepted, unexpired and names a scope repo or the workspace. */
const plainFilter = () =>
  entries.filter(
    (entry) =>
      entry.status === "accepted" &&
      (entry.expiresAt === undefined || Date.parse(entry.expiresAt) > now.getTime()) &&
      (entry.applies === "workspace" || entry.applies.some((target) => scopeRepos.has(target.repo))),
  );

/** The baseline a free-form memory file amounts to: what the filter keeps, as one text, and its tokens. */
const filterAndRender = (counter: { count(text: string): number | Promise<number> }) =>
  counter.count(
    plainFilter()
      .map((entry) => `- ${entry.title}\n${entry.body}\n`)
      .join(""),
  );

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

/** Milliseconds per call over a batch of `calls`: a single call of a millisecond is mostly noise. */
async function time(run: () => unknown, calls = BATCH): Promise<number> {
  const start = process.hrtime.bigint();
  for (let call = 0; call < calls; call++) await run();
  return Number(process.hrtime.bigint() - start) / 1e6 / calls;
}

const bytes = createByteEstimateCounter();
const o200k = createTokenCounter({ encoding: "o200k_base" });
const results: Record<string, number[]> = { filter: [], filterRender: [], bytes: [], o200k: [], o200kCold: [], newListing: [], list: [] };
let kept = 0;
let selection: Awaited<ReturnType<typeof selectMemory>> | undefined;

// The entries as files, for the listing figure.
const directory = join(import.meta.dirname, ".data", `memory-${ENTRIES}`);
rmSync(directory, { recursive: true, force: true });
mkdirSync(directory, { recursive: true });
for (const entry of entries) writeFileSync(join(directory, `${entry.id}.md`), renderMemoryEntry(entry));
const store = createFileMemoryStore(directory);

// One warm-up of each, so every measured run is on a warm JIT (the cold-cache run is separate).
plainFilter();
await selectMemory({ entries, spec, scope, counter: bytes, now });
// Warm runs first, interleaved. The cold runs come after: their cloned entries and one-off
// counters are new object shapes, which would slow every later call through polymorphic
// property access and make the warm figures say something about the benchmark, not the code.
for (let run = 0; run < RUNS; run++) {
  results.filter!.push(await time(() => (kept = plainFilter().length)));
  results.filterRender!.push(await time(() => filterAndRender(o200k)));
  results.bytes!.push(await time(() => selectMemory({ entries, spec, scope, counter: bytes, now })));
  results.o200k!.push(await time(async () => (selection = await selectMemory({ entries, spec, scope, counter: o200k, now }))));
}
for (let run = 0; run < RUNS; run++) {
  // A fresh copy of every entry and a counter of its own name: nothing cached from the runs before.
  const fresh = structuredClone(entries);
  const cold = { name: `o200k_base/cold-${run}`, estimated: false, count: (text: string) => o200k.count(text) };
  results.o200kCold!.push(await time(() => selectMemory({ entries: fresh, spec, scope, counter: cold, now }), 1));
  // A new listing (one plain pass; its index is built only if it is selected from again) whose texts were counted before: what one dispatch pays.
  const listed = structuredClone(entries);
  results.newListing!.push(await time(() => selectMemory({ entries: listed, spec, scope, counter: o200k, now }), 1));
  if (run < 3) results.list!.push(await time(() => store.list(), 1));
}
o200k[Symbol.dispose]();

const base = median(results.filter!);
console.log(
  `\nbench/memory: ${ENTRIES.toLocaleString("en-US")} entries, ${kept.toLocaleString("en-US")} pass the plain filter, ${selection!.applicable} apply to the scope, ${selection!.selected.length} selected (${selection!.tokens} of ${selection!.budget} tokens), ${selection!.notFitted.length} did not fit; median of ${RUNS} runs, Node ${process.version}, ${process.env.BENCH_MACHINE ?? "this machine"}`,
);
const rows: [string, number][] = [
  ["baseline: plain filter (status, expiry, repo)", base],
  ["baseline: plain filter + one text of all it keeps + o200k count (unbounded)", median(results.filterRender!)],
  ["selectMemory, byte estimate, warm", median(results.bytes!)],
  ["selectMemory, o200k_base, warm counts", median(results.o200k!)],
  ["selectMemory, o200k_base, first selection over a new listing, counts known by text", median(results.newListing!)],
  ["selectMemory, o200k_base, cold counts", median(results.o200kCold!)],
  ["store.list() of the 10,000 files (for reference, median of 3)", median(results.list!)],
];
console.log("| run | ms | vs plain filter |\n|---|---:|---:|");
for (const [name, ms] of rows) console.log(`| ${name} | ${ms.toFixed(2)} | ${(ms / base).toFixed(2)}x |`);
rmSync(directory, { recursive: true, force: true });

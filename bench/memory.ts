// bench/memory: select project memory for one task's scope out of 10,000 entries, beside a plain
// filter over the same entries in the same run (accepted, unexpired, for a scope repo or the
// workspace: what a free-form memory file with a grep gives). Taken with bench/lib/bench-helper.ts:
// every case interleaved, min and median, ratios to the plain filter, load before and after.
// The "new listing" cases get, before each run (untimed), a fresh listing parsed from the entry
// files' texts, as `store.list()` returns it: what one dispatch selects from.
// Run with `npm run bench -- memory` (BENCH_RUNS, default 15 here).
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTokenCounter } from "@bulkhead/budget";
import { createByteEstimateCounter, parseTaskSpec, type ResolvedScope } from "@bulkhead/core";
import { createFileMemoryStore, parseMemoryEntry, renderMemoryEntry, selectMemory, type MemoryEntry } from "@bulkhead/memory";
import { begin, measure, report, RUNS as HELPER_RUNS, type BenchCase } from "./lib/bench-helper.js";

const ENTRIES = Number(process.env.BENCH_MEMORY_ENTRIES ?? 10_000);
// Each run is a few milliseconds: many interleaved runs, so a busy neighbour on a shared machine moves the median little.
const RUNS = Math.max(HELPER_RUNS, Number(process.env.BENCH_RUNS ?? 15));
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
const plainFilter = (listing: readonly MemoryEntry[] = entries) =>
  listing.filter(
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

const bytes = createByteEstimateCounter();
const o200k = createTokenCounter({ encoding: "o200k_base" });

// The entries as files, for the listing figure, and their texts, from which each fresh listing is parsed.
const directory = join(import.meta.dirname, ".data", `memory-${ENTRIES}`);
rmSync(directory, { recursive: true, force: true });
mkdirSync(directory, { recursive: true });
const texts = entries.map((entry) => renderMemoryEntry(entry));
for (const [index, entry] of entries.entries()) writeFileSync(join(directory, `${entry.id}.md`), texts[index]!);
const store = createFileMemoryStore(directory);
const newListing = () => texts.map((text) => parseMemoryEntry(text));

// One warm-up of each, so every measured run is on a warm JIT.
plainFilter();
await selectMemory({ entries, spec, scope, counter: bytes, now });
const selection = await selectMemory({ entries, spec, scope, counter: o200k, now });
await selectMemory({ entries: newListing(), spec, scope, counter: o200k, now });

const mark = begin(
  `bench/memory: ${ENTRIES.toLocaleString("en-US")} entries, ${plainFilter().length.toLocaleString("en-US")} pass the plain filter, ${selection.applicable} apply to the scope, ${selection.selected.length} selected (${selection.tokens} of ${selection.budget} tokens), ${selection.notFitted.length} did not fit`,
);
let fresh: MemoryEntry[] = [];
let coldRun = 0;
let coldCounter = createTokenCounter({ encoding: "o200k_base" });
let cold = { name: "o200k_base/cold", estimated: false, count: (text: string) => coldCounter.count(text) };
const FILTER = "baseline: plain filter (status, expiry, repo)";
const FILTER_NEW = "baseline: plain filter over a new listing";
const cases: BenchCase[] = [
  { label: FILTER, run: () => plainFilter() },
  { label: "baseline: plain filter + one text of all it keeps + o200k count (unbounded)", run: () => filterAndRender(o200k) },
  { label: "selectMemory, byte estimate, warm", run: () => selectMemory({ entries, spec, scope, counter: bytes, now }) },
  { label: "selectMemory, o200k_base, warm counts", run: () => selectMemory({ entries, spec, scope, counter: o200k, now }) },
  { label: FILTER_NEW, before: () => (fresh = newListing()), run: () => plainFilter(fresh) },
  {
    label: "selectMemory, o200k_base, first selection over a new listing (texts counted before)",
    before: () => (fresh = newListing()),
    run: () => selectMemory({ entries: fresh, spec, scope, counter: o200k, now }),
  },
  {
    label: "selectMemory, o200k_base, cold (new listing, a counter never seen)",
    before: () => {
      fresh = newListing();
      // A new counter (its own content-hash cache empty) under a name of its own (nothing cached
      // by selectMemory either): every block it takes, and the section, is tokenized.
      coldCounter[Symbol.dispose]();
      coldCounter = createTokenCounter({ encoding: "o200k_base" });
      cold = { name: `o200k_base/cold-${coldRun++}`, estimated: false, count: (text: string) => coldCounter.count(text) };
    },
    run: () => selectMemory({ entries: fresh, spec, scope, counter: cold, now }),
  },
];
const samples = await measure(cases, RUNS);
// Reading 10,000 files takes seconds: three runs, for reference.
samples.push(...(await measure([{ label: "store.list() of the 10,000 entry files (for reference)", run: () => store.list() }], 3)));
o200k[Symbol.dispose]();
coldCounter[Symbol.dispose]();
const filterNew = samples.find((sample) => sample.label === FILTER_NEW)!;
report(mark, samples, {
  baseline: FILTER,
  extra: { "÷ filter over a new listing": (sample) => `${(sample.median / filterNew.median).toFixed(2)}×` },
  notes: [
    `${RUNS} runs of each case, one call per run; "new listing" cases parse a fresh listing before each run, untimed. Median of the filter over a new listing: ${filterNew.median.toFixed(2)} ms.`,
  ],
});
rmSync(directory, { recursive: true, force: true });

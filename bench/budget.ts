// bench/budget: token counting beside raw tiktoken on the same text (cold and warm cache, and
// gpt-tokenizer as a reference line), scope counting through resolveScope, reserve+settle
// operations per second in memory, and durable ledger events per second.
// Run with `npm run bench -- budget`.
import { createRequire } from "node:module";
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { parseTaskSpec, resolveScope, createScopeCache } from "@bulkhead/core";
import { budgetMiddleware, createBudget, createFileLedger, createTokenCounter, meterAnthropic, meterOpenAI } from "@bulkhead/budget";
import { createScriptedUpstream } from "@bulkhead/test-utils";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { generateText, wrapLanguageModel } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import { countTokens as gptCount } from "gpt-tokenizer/encoding/o200k_base";

const require = createRequire(import.meta.url);
const tiktoken = require("tiktoken") as { get_encoding(name: string): { encode_ordinary(text: string): Uint32Array; free(): void } };
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const root = join(import.meta.dirname, "..");
const corpusDir = join(import.meta.dirname, ".data", "corpus");

/** ~5 MB of real JavaScript and TypeScript from node_modules: no minified lines, no special-token syntax. */
function corpus(): string[] {
  const files: string[] = [];
  let bytes = 0;
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (bytes > 5_000_000) return;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.(js|ts|mjs)$/.test(entry.name) && statSync(path).size < 200_000) {
        const text = readFileSync(path, "utf8");
        if (text.includes("<|") || text.split("\n").some((line) => line.length > 500)) continue;
        files.push(path);
        bytes += Buffer.byteLength(text);
      }
    }
  };
  for (const dir of ["typescript/lib", "zod", "yaml/dist", "vitest/dist", "eventemitter3"]) walk(join(root, "node_modules", dir));
  return files;
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

function time(run: () => unknown): number {
  const start = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function timeAsync(run: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

const paths = corpus();
const texts = paths.map((path) => readFileSync(path, "utf8"));
const bytes = texts.reduce((sum, text) => sum + Buffer.byteLength(text), 0);
const mb = bytes / 1024 / 1024;

// Warm up both tokenizers (WASM init is not what we measure).
const raw = tiktoken.get_encoding("o200k_base");
raw.encode_ordinary("warm up");
gptCount("warm up");

const results: Record<string, number[]> = { raw: [], cold: [], warm: [], gpt: [] };
let tokens = 0;
for (let run = 0; run < RUNS; run++) {
  results.raw!.push(time(() => (tokens = texts.reduce((sum, text) => sum + raw.encode_ordinary(text).length, 0))));
  const counter = createTokenCounter({ encoding: "o200k_base" });
  let ours = 0;
  results.cold!.push(time(() => (ours = texts.reduce((sum, text) => sum + counter.count(text), 0))));
  if (ours !== tokens) throw new Error(`counts differ: bulkhead ${ours}, tiktoken ${tokens}`);
  results.warm!.push(time(() => texts.reduce((sum, text) => sum + counter.count(text), 0)));
  counter.dispose();
  results.gpt!.push(time(() => texts.reduce((sum, text) => sum + gptCount(text), 0)));
}

// The same files as a tree, resolved with the counter, beside read + raw count.
rmSync(corpusDir, { recursive: true, force: true });
paths.forEach((path, index) => {
  const target = join(corpusDir, "src", `${index}-${relative(join(root, "node_modules"), path).replaceAll("/", "_")}`);
  mkdirSync(join(corpusDir, "src"), { recursive: true });
  writeFileSync(target, texts[index]!);
});
const spec = parseTaskSpec(
  JSON.stringify({
    task: "bench",
    context_scope: { repos: [{ name: "corpus", paths: ["src"] }], max_files: 1e6, max_tokens: 1e9 },
    ownership: { primary_repo: "corpus" },
  }),
);
const scopeResults: Record<string, number[]> = { raw: [], cold: [], warm: [] };
for (let run = 0; run < RUNS; run++) {
  const files = readdirSync(join(corpusDir, "src"));
  scopeResults.raw!.push(
    time(() => files.reduce((sum, name) => sum + raw.encode_ordinary(readFileSync(join(corpusDir, "src", name), "utf8")).length, 0)),
  );
  const counter = createTokenCounter({ encoding: "o200k_base" });
  const cache = createScopeCache();
  let scopeTokens = 0;
  scopeResults.cold!.push(
    await timeAsync(async () => (scopeTokens = (await resolveScope(spec, { repos: { corpus: corpusDir }, counter, cache })).totals.tokens)),
  );
  if (scopeTokens !== tokens) throw new Error(`scope counted ${scopeTokens}, tiktoken ${tokens}`);
  scopeResults.warm!.push(await timeAsync(() => resolveScope(spec, { repos: { corpus: corpusDir }, counter, cache })));
  counter.dispose();
}
raw.free();

// reserve + settle in memory, nested two levels.
const OPS = 1_000_000;
const reserveRuns: number[] = [];
for (let run = 0; run < RUNS; run++) {
  const session = createBudget({ id: "session", limits: { sessionTotal: 1e15 } });
  const task = createBudget({ id: "task", parent: session, limits: { generation: 1e15, contextRead: 1e15 } });
  reserveRuns.push(
    time(() => {
      for (let index = 0; index < OPS; index++) task.settle({ lease: task.reserve({ amounts: { generation: 100 } }), spent: 90 });
    }),
  );
}

// Durable ledger: events appended, batched, fsynced.
const EVENTS = 200_000;
const ledgerRuns: number[] = [];
for (let run = 0; run < RUNS; run++) {
  const path = join(import.meta.dirname, ".data", `ledger-${run}.jsonl`);
  rmSync(path, { force: true });
  const ledger = createFileLedger({ path });
  const budget = createBudget({ limits: { generation: 1e15 }, ledger });
  ledgerRuns.push(
    await timeAsync(async () => {
      for (let index = 0; index < EVENTS; index++) {
        budget.charge({ spent: { generation: 1 } });
        if (index % 4096 === 4095) await new Promise((resolve) => setImmediate(resolve));
      }
      await ledger.close();
    }),
  );
  rmSync(path, { force: true });
}

const base = median(results.raw!);
console.log(
  `\nbench/budget: ${paths.length} files, ${mb.toFixed(2)} MB, ${tokens.toLocaleString("en-US")} o200k tokens, median of ${RUNS} runs, Node ${process.version}`,
);
console.log("| counting (per file, o200k_base) | ms | MB/s | vs raw tiktoken |");
console.log("|---|---:|---:|---:|");
for (const [name, label] of [
  ["raw", "raw tiktoken encode_ordinary"],
  ["cold", "bulkhead counter, cold cache"],
  ["warm", "bulkhead counter, warm cache"],
  ["gpt", "gpt-tokenizer countTokens (reference)"],
] as const) {
  const ms = median(results[name]!);
  console.log(`| ${label} | ${ms.toFixed(0)} | ${(mb / (ms / 1000)).toFixed(2)} | ${(base / ms).toFixed(2)}x |`);
}
const scopeBase = median(scopeResults.raw!);
console.log("\n| scope counting (same files as a tree) | ms | MB/s | vs read + raw tiktoken |");
console.log("|---|---:|---:|---:|");
for (const [name, label] of [
  ["raw", "read + raw tiktoken"],
  ["cold", "resolveScope + counter, cold"],
  ["warm", "resolveScope + counter, warm"],
] as const) {
  const ms = median(scopeResults[name]!);
  console.log(`| ${label} | ${ms.toFixed(0)} | ${(mb / (ms / 1000)).toFixed(2)} | ${(scopeBase / ms).toFixed(2)}x |`);
}
const reserveMs = median(reserveRuns);
const ledgerMs = median(ledgerRuns);
console.log(`\n| operation | count | ms | per second |`);
console.log("|---|---:|---:|---:|");
console.log(
  `| reserve + settle, in memory, nested 2 levels | ${OPS.toLocaleString("en-US")} | ${reserveMs.toFixed(0)} | ${Math.round(OPS / (reserveMs / 1000)).toLocaleString("en-US")} |`,
);
console.log(
  `| durable ledger events (batched append + fdatasync) | ${EVENTS.toLocaleString("en-US")} | ${ledgerMs.toFixed(0)} | ${Math.round(EVENTS / (ledgerMs / 1000)).toLocaleString("en-US")} |`,
);

// Adapters (issue 14): per-call overhead of each wrapper beside the bare client, against the same
// local scripted API, calls interleaved (bare, metered, bare, ...) so drift hits both alike. The
// AI SDK line uses the SDK's own mock model (no HTTP), so it shows the middleware alone.
const CALLS = Number(process.env.BENCH_ADAPTER_CALLS ?? 400);
const upstream = await createScriptedUpstream({
  whenEmpty: { text: "Added the limiter.", usage: { uncachedInputTokens: 900, cacheReadTokens: 4000, outputTokens: 40 } },
});
const adapterBudget = () => createBudget({ limits: { generation: 1e12, sessionTotal: 1e15, usd: 1e9 } });
const prompt = "Add a rate limit of 100 requests per minute to the user API, with a test. ".repeat(4);
const anthropicParams = { model: "claude-sonnet-4-6", max_tokens: 1024, messages: [{ role: "user" as const, content: prompt }] };
const bareAnthropic = new Anthropic({ baseURL: upstream.url, apiKey: "sk-ant-bench", maxRetries: 0 });
const meteredAnthropic = meterAnthropic(bareAnthropic, { budget: adapterBudget() });
const bareOpenAI = new OpenAI({ baseURL: `${upstream.url}/v1`, apiKey: "sk-bench", maxRetries: 0 });
const meteredOpenAI = meterOpenAI(bareOpenAI, { budget: adapterBudget() });
const mock = new MockLanguageModelV4({
  modelId: "gpt-5.1",
  doGenerate: async () => ({
    content: [{ type: "text", text: "Added the limiter." }],
    finishReason: { unified: "stop", raw: "stop" },
    usage: {
      inputTokens: { total: 4900, noCache: 900, cacheRead: 4000, cacheWrite: 0 },
      outputTokens: { total: 40, text: 40, reasoning: 0 },
    },
    warnings: [],
  }),
});
const wrappedMock = wrapLanguageModel({ model: mock, middleware: budgetMiddleware({ budget: adapterBudget() }) });
const adapterCases: { name: string; bare: () => Promise<unknown>; metered: () => Promise<unknown> }[] = [
  {
    name: "meterAnthropic: messages.create",
    bare: () => bareAnthropic.messages.create(anthropicParams),
    metered: () => meteredAnthropic.messages.create(anthropicParams),
  },
  {
    name: "meterAnthropic: messages.create, stream",
    bare: async () => {
      for await (const _event of await bareAnthropic.messages.create({ ...anthropicParams, stream: true }));
    },
    metered: async () => {
      for await (const _event of await meteredAnthropic.messages.create({ ...anthropicParams, stream: true }));
    },
  },
  {
    name: "meterOpenAI: chat.completions.create",
    bare: () => bareOpenAI.chat.completions.create({ model: "gpt-5.1", messages: [{ role: "user", content: prompt }] }),
    metered: () => meteredOpenAI.chat.completions.create({ model: "gpt-5.1", messages: [{ role: "user", content: prompt }] }),
  },
  {
    name: "meterOpenAI: responses.create",
    bare: () => bareOpenAI.responses.create({ model: "gpt-5.1", input: prompt }),
    metered: () => meteredOpenAI.responses.create({ model: "gpt-5.1", input: prompt }),
  },
  {
    name: "budgetMiddleware (ai@7): generateText, mock model",
    bare: () => generateText({ model: mock, prompt }),
    metered: () => generateText({ model: wrappedMock, prompt }),
  },
];
const adapterRows: { name: string; bare: number; metered: number }[] = [];
for (const { name, bare, metered } of adapterCases) {
  for (let warm = 0; warm < 20; warm++) {
    await bare();
    await metered();
  }
  const bareTimes: number[] = [];
  const meteredTimes: number[] = [];
  for (let call = 0; call < CALLS; call++) {
    bareTimes.push(await timeAsync(bare));
    meteredTimes.push(await timeAsync(metered));
  }
  adapterRows.push({ name, bare: median(bareTimes), metered: median(meteredTimes) });
}
await upstream.close();
console.log(
  `\n| adapter (median of ${CALLS} interleaved calls, local scripted API) | bare ms/call | metered ms/call | added ms/call | ratio |`,
);
console.log("|---|---:|---:|---:|---:|");
for (const row of adapterRows) {
  console.log(
    `| ${row.name} | ${row.bare.toFixed(3)} | ${row.metered.toFixed(3)} | ${(row.metered - row.bare).toFixed(3)} | ${(row.metered / row.bare).toFixed(2)}x |`,
  );
}

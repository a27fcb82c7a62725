// bench/budget: token counting beside raw tiktoken on the same text (cold and warm cache, and
// gpt-tokenizer as a reference line), scope counting through resolveScope beside read + raw
// tiktoken, reserve+settle beside the least a lease table does, durable ledger events beside
// the same lines appended and fdatasynced by hand, and each SDK adapter's added time per call
// beside the bare client against the same local scripted API. Every table comes from
// bench/lib/bench-helper.ts (load before and after, >= 3 interleaved runs, min and median,
// ratios to the baseline of the same run, UNDER LOAD marks).
// Run with `npm run bench -- budget`.
import { createRequire } from "node:module";
import {
  closeSync,
  fdatasyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join, relative } from "node:path";
import { parseTaskSpec, resolveScope, createScopeCache } from "@bulkhead/core";
import { budgetMiddleware, createBudget, createFileLedger, createTokenCounter, meterAnthropic, meterOpenAI } from "@bulkhead/budget";
import { createScriptedUpstream } from "@bulkhead/test-utils";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { generateText, simulateReadableStream, streamText, wrapLanguageModel } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import { countTokens as gptCount } from "gpt-tokenizer/encoding/o200k_base";
import { begin, measure, median, report, RUNS, toSample, type Sample } from "./lib/bench-helper.js";

const require = createRequire(import.meta.url);
const tiktoken = require("tiktoken") as { get_encoding(name: string): { encode_ordinary(text: string): Uint32Array; free(): void } };
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

const paths = corpus();
const texts = paths.map((path) => readFileSync(path, "utf8"));
const bytes = texts.reduce((sum, text) => sum + Buffer.byteLength(text), 0);
const mb = bytes / 1024 / 1024;
const mbPerSecond = (sample: Sample) => (mb / (sample.median / 1000)).toFixed(2);

// Warm up both tokenizers (WASM init is not what we measure).
const raw = tiktoken.get_encoding("o200k_base");
raw.encode_ordinary("warm up");
gptCount("warm up");
const tokens = texts.reduce((sum, text) => sum + raw.encode_ordinary(text).length, 0);

// Counting, file by file. The cold counter is new for each run; the warm one has seen the files.
const check = (what: string, counted: number) => {
  if (counted !== tokens) throw new Error(`counts differ: ${what} ${counted}, tiktoken ${tokens}`);
};
let cold = createTokenCounter({ encoding: "o200k_base" });
const warm = createTokenCounter({ encoding: "o200k_base" });
check(
  "warm-up",
  texts.reduce((sum, text) => sum + warm.count(text), 0),
);
const countingMark = begin(
  `bench/budget: counting ${paths.length} files, ${mb.toFixed(2)} MB, ${tokens.toLocaleString("en-US")} o200k_base tokens, per file`,
);
const counting = await measure([
  {
    label: "raw tiktoken encode_ordinary",
    run: () =>
      check(
        "raw",
        texts.reduce((sum, text) => sum + raw.encode_ordinary(text).length, 0),
      ),
  },
  {
    label: "bulkhead counter, new (content cache cold; the process-wide piece cache is warm after run 1)",
    before: () => {
      cold.dispose();
      cold = createTokenCounter({ encoding: "o200k_base" });
    },
    run: () =>
      check(
        "cold",
        texts.reduce((sum, text) => sum + cold.count(text), 0),
      ),
  },
  {
    label: "bulkhead counter, warm cache",
    run: () =>
      check(
        "warm",
        texts.reduce((sum, text) => sum + warm.count(text), 0),
      ),
  },
  { label: "gpt-tokenizer countTokens (reference)", run: () => texts.reduce((sum, text) => sum + gptCount(text), 0) },
]);
report(countingMark, counting, { extra: { "MB/s": mbPerSecond } });

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
const files = readdirSync(join(corpusDir, "src"));
let scopeCounter = createTokenCounter({ encoding: "o200k_base" });
let scopeCache = createScopeCache();
const warmScope = { counter: createTokenCounter({ encoding: "o200k_base" }), cache: createScopeCache() };
const resolveTokens = async (options: { counter: typeof scopeCounter; cache: typeof scopeCache }) =>
  (await resolveScope(spec, { repos: { corpus: corpusDir }, ...options })).totals.tokens;
check("scope warm-up", await resolveTokens(warmScope));
const scopeMark = begin("bench/budget: scope counting, the same files as a tree");
const scope = await measure([
  {
    label: "read + raw tiktoken",
    run: () =>
      check(
        "read + raw",
        files.reduce((sum, name) => sum + raw.encode_ordinary(readFileSync(join(corpusDir, "src", name), "utf8")).length, 0),
      ),
  },
  {
    label: "resolveScope + counter, cold",
    before: () => {
      scopeCounter.dispose();
      scopeCounter = createTokenCounter({ encoding: "o200k_base" });
      scopeCache = createScopeCache();
    },
    run: async () => check("scope cold", await resolveTokens({ counter: scopeCounter, cache: scopeCache })),
  },
  { label: "resolveScope + counter, warm", run: async () => check("scope warm", await resolveTokens(warmScope)) },
]);
report(scopeMark, scope, { extra: { "MB/s": mbPerSecond } });
raw.free();

// reserve + settle in memory, nested two levels, beside the least a lease table does (an id
// into a map and out again, and a running total).
const OPS = 1_000_000;
const perSecond = (count: number) => (sample: Sample) => Math.round(count / (sample.median / 1000)).toLocaleString("en-US");
const session = createBudget({ id: "session", limits: { sessionTotal: 1e15 } });
const task = createBudget({ id: "task", parent: session, limits: { generation: 1e15, contextRead: 1e15 } });
const reserveMark = begin(`bench/budget: ${OPS.toLocaleString("en-US")} reserve + settle pairs, in memory`);
const reserveSamples = await measure([
  {
    label: "baseline: Map set + delete, a running total",
    run: () => {
      const held = new Map<number, number>();
      let used = 0;
      for (let index = 0; index < OPS; index++) {
        held.set(index, 100);
        used += 90 + held.get(index)! - 100;
        held.delete(index);
      }
      return used;
    },
  },
  {
    label: "reserve + settle, nested 2 levels",
    run: () => {
      for (let index = 0; index < OPS; index++) task.settle({ lease: task.reserve({ amounts: { generation: 100 } }), spent: 90 });
    },
  },
]);
report(reserveMark, reserveSamples, { extra: { "pairs/s": perSecond(OPS) } });

// Durable ledger: events appended, batched, fdatasynced; beside the same kind of lines written
// and fdatasynced by hand in the same batches.
const EVENTS = 200_000;
const BATCH = 4096;
const ledgerPath = join(import.meta.dirname, ".data", "ledger.jsonl");
const ledgerMark = begin(`bench/budget: ${EVENTS.toLocaleString("en-US")} durable ledger events`);
const ledgerSamples = await measure([
  {
    label: "baseline: JSON lines, writeSync + fdatasync per batch",
    before: () => rmSync(ledgerPath, { force: true }),
    run: () => {
      const fd = openSync(ledgerPath, "a");
      let lines = "";
      for (let index = 0; index < EVENTS; index++) {
        lines += `${JSON.stringify({ type: "charge", budget: "budget", amounts: { generation: 1 }, at: Date.now() })}\n`;
        if (index % BATCH === BATCH - 1 || index === EVENTS - 1) {
          writeSync(fd, lines);
          fdatasyncSync(fd);
          lines = "";
        }
      }
      closeSync(fd);
    },
  },
  {
    label: "createFileLedger: budget.charge",
    before: () => rmSync(ledgerPath, { force: true }),
    run: async () => {
      const ledger = createFileLedger({ path: ledgerPath });
      const budget = createBudget({ limits: { generation: 1e15 }, ledger });
      for (let index = 0; index < EVENTS; index++) {
        budget.charge({ spent: { generation: 1 } });
        if (index % BATCH === BATCH - 1) await new Promise((resolve) => setImmediate(resolve));
      }
      await ledger.close();
    },
  },
]);
rmSync(ledgerPath, { force: true });
report(ledgerMark, ledgerSamples, { extra: { "events/s": perSecond(EVENTS) } });

// Adapters (issue 14): each wrapper beside the bare client, both against the same local scripted
// API, calls interleaved one by one (bare, metered, bare, ...) so drift hits both alike; a run's
// figure is the median call of that run. The AI SDK lines use the SDK's own mock model (no HTTP),
// so they show the middleware alone. CPU is this process's (the scripted API runs in it too, alike
// for both).
const CALLS = Number(process.env.BENCH_ADAPTER_CALLS ?? 200);
const upstream = await createScriptedUpstream({
  whenEmpty: { text: "Added the limiter.", usage: { uncachedInputTokens: 900, cacheReadTokens: 4000, outputTokens: 40 } },
});
const adapterBudget = () => createBudget({ limits: { generation: 1e12, sessionTotal: 1e15, usd: 1e9 } });
const prompt = "Add a rate limit of 100 requests per minute to the user API, with a test. ".repeat(4);
const anthropicParams = { model: "claude-sonnet-4-6", max_tokens: 1024, messages: [{ role: "user" as const, content: prompt }] };
const chatParams = { model: "gpt-5.1", messages: [{ role: "user" as const, content: prompt }] };
const bareAnthropic = new Anthropic({ baseURL: upstream.url, apiKey: "sk-ant-bench", maxRetries: 0 });
const meteredAnthropic = meterAnthropic(bareAnthropic, { budget: adapterBudget() });
const bareOpenAI = new OpenAI({ baseURL: `${upstream.url}/v1`, apiKey: "sk-bench", maxRetries: 0 });
const meteredOpenAI = meterOpenAI(bareOpenAI, { budget: adapterBudget() });
const mockUsage = {
  inputTokens: { total: 4900, noCache: 900, cacheRead: 4000, cacheWrite: 0 },
  outputTokens: { total: 40, text: 40, reasoning: 0 },
};
const mock = new MockLanguageModelV4({
  modelId: "gpt-5.1",
  doGenerate: async () => ({
    content: [{ type: "text", text: "Added the limiter." }],
    finishReason: { unified: "stop", raw: "stop" },
    usage: mockUsage,
    warnings: [],
  }),
  doStream: async () => ({
    stream: simulateReadableStream({
      // No delays: the middleware's own time is what is measured.
      initialDelayInMs: null,
      chunkDelayInMs: null,
      chunks: [
        { type: "stream-start" as const, warnings: [] },
        { type: "text-start" as const, id: "t" },
        ...["Added ", "the ", "limiter ", "with ", "a ", "test."].map((delta) => ({ type: "text-delta" as const, id: "t", delta })),
        { type: "text-end" as const, id: "t" },
        { type: "finish" as const, finishReason: { unified: "stop" as const, raw: "stop" }, usage: mockUsage },
      ],
    }),
  }),
});
const wrappedMock = wrapLanguageModel({ model: mock, middleware: budgetMiddleware({ budget: adapterBudget() }) });
const drain = async (stream: AsyncIterable<unknown>) => {
  for await (const _event of stream);
};
const adapterCases: { name: string; bare: () => Promise<unknown>; metered: () => Promise<unknown> }[] = [
  {
    name: "meterAnthropic: messages.create",
    bare: () => bareAnthropic.messages.create(anthropicParams),
    metered: () => meteredAnthropic.messages.create(anthropicParams),
  },
  {
    name: "meterAnthropic: messages.create, stream",
    bare: async () => drain(await bareAnthropic.messages.create({ ...anthropicParams, stream: true })),
    metered: async () => drain(await meteredAnthropic.messages.create({ ...anthropicParams, stream: true })),
  },
  {
    name: "meterOpenAI: chat.completions.create",
    bare: () => bareOpenAI.chat.completions.create(chatParams),
    metered: () => meteredOpenAI.chat.completions.create(chatParams),
  },
  {
    name: "meterOpenAI: chat.completions.create, stream",
    bare: async () => drain(await bareOpenAI.chat.completions.create({ ...chatParams, stream: true })),
    metered: async () => drain(await meteredOpenAI.chat.completions.create({ ...chatParams, stream: true })),
  },
  {
    name: "meterOpenAI: responses.create",
    bare: () => bareOpenAI.responses.create({ model: "gpt-5.1", input: prompt }),
    metered: () => meteredOpenAI.responses.create({ model: "gpt-5.1", input: prompt }),
  },
  {
    name: "meterOpenAI: responses.create, stream",
    bare: async () => drain(await bareOpenAI.responses.create({ model: "gpt-5.1", input: prompt, stream: true })),
    metered: async () => drain(await meteredOpenAI.responses.create({ model: "gpt-5.1", input: prompt, stream: true })),
  },
  {
    name: "budgetMiddleware (ai@7): generateText, mock model",
    bare: () => generateText({ model: mock, prompt }),
    metered: () => generateText({ model: wrappedMock, prompt }),
  },
  {
    name: "budgetMiddleware (ai@7): streamText, mock model",
    bare: async () => streamText({ model: mock, prompt }).text,
    metered: async () => streamText({ model: wrappedMock, prompt }).text,
  },
];
const only = process.env.BENCH_ADAPTERS;
const chosen = adapterCases.filter((entry) => !only || entry.name.includes(only));
const perCall = chosen.map(() => ({ bare: [] as number[], metered: [] as number[], bareCpu: [] as number[], meteredCpu: [] as number[] }));
const timed = async (call: () => Promise<unknown>, into: number[], cpuInto: number[]) => {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  await call();
  into.push(Number(process.hrtime.bigint() - start) / 1e6);
  const used = process.cpuUsage(cpu);
  cpuInto.push((used.user + used.system) / 1000);
};
for (const { bare, metered } of chosen) {
  for (let warm = 0; warm < 30; warm++) {
    await bare();
    await metered();
  }
}
const adapterMark = begin(`bench/budget: SDK adapters, added time per call (${CALLS} interleaved calls per case and run)`);
for (let run = 0; run < RUNS; run++) {
  for (const [index, { bare, metered }] of chosen.entries()) {
    const times = { bare: [] as number[], metered: [] as number[], bareCpu: [] as number[], meteredCpu: [] as number[] };
    for (let call = 0; call < CALLS; call++) {
      await timed(bare, times.bare, times.bareCpu);
      await timed(metered, times.metered, times.meteredCpu);
    }
    const figures = perCall[index]!;
    figures.bare.push(median(times.bare));
    figures.metered.push(median(times.metered));
    figures.bareCpu.push(median(times.bareCpu));
    figures.meteredCpu.push(median(times.meteredCpu));
  }
}
// The same calls once more with the network taken out: each client's fetch replays the bytes the
// scripted API sent it (recorded above, one chunk per event as it wrote them), so the figures
// are the SDK's and the adapter's own work. Less exposed to other load than a loopback round trip.
const recordings = new Map<string, { status: number; headers: [string, string][]; chunks: Buffer[] }>();
const keyOf = (input: string | URL | Request, init?: RequestInit) =>
  `${String(input instanceof Request ? input.url : input)} ${typeof init?.body === "string" && init.body.includes('"stream":true')}`;
const recording = async (input: string | URL | Request, init?: RequestInit) => {
  const response = await fetch(input, init);
  const text = await response.clone().text();
  const chunks = (text.includes("\n\n") ? text.split(/(?<=\n\n)/) : [text]).map((part) => Buffer.from(part));
  recordings.set(keyOf(input, init), { status: response.status, headers: [...response.headers], chunks });
  return response;
};
const replaying = async (input: string | URL | Request, init?: RequestInit) => {
  const recorded = recordings.get(keyOf(input, init))!;
  let next = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (next < recorded.chunks.length) controller.enqueue(new Uint8Array(recorded.chunks[next++]!));
      else controller.close();
    },
  });
  return new Response(body, { status: recorded.status, headers: recorded.headers });
};
const httpCases = chosen.filter((entry) => !entry.name.startsWith("budgetMiddleware"));
const casesFor = (anthropic: Anthropic, openai: OpenAI, metered: boolean) => {
  const a = metered ? meterAnthropic(anthropic, { budget: adapterBudget() }) : anthropic;
  const o = metered ? meterOpenAI(openai, { budget: adapterBudget() }) : openai;
  const byName: Record<string, () => Promise<unknown>> = {
    "meterAnthropic: messages.create": () => a.messages.create(anthropicParams),
    "meterAnthropic: messages.create, stream": async () => drain(await a.messages.create({ ...anthropicParams, stream: true })),
    "meterOpenAI: chat.completions.create": () => o.chat.completions.create(chatParams),
    "meterOpenAI: chat.completions.create, stream": async () => drain(await o.chat.completions.create({ ...chatParams, stream: true })),
    "meterOpenAI: responses.create": () => o.responses.create({ model: "gpt-5.1", input: prompt }),
    "meterOpenAI: responses.create, stream": async () => drain(await o.responses.create({ model: "gpt-5.1", input: prompt, stream: true })),
  };
  return httpCases.map((entry) => byName[entry.name]!);
};
const recorders = [false, true].map((metered) =>
  casesFor(
    new Anthropic({ baseURL: upstream.url, apiKey: "sk-ant-bench", maxRetries: 0, fetch: recording }),
    new OpenAI({ baseURL: `${upstream.url}/v1`, apiKey: "sk-bench", maxRetries: 0, fetch: recording }),
    metered,
  ),
);
// The requests differ (Chat streams metered ask for usage): the metered ones, recorded last, answer both.
for (const calls of recorders) for (const call of calls) await call();
await upstream.close();
const replayBare = casesFor(
  new Anthropic({ baseURL: upstream.url, apiKey: "sk-ant-bench", maxRetries: 0, fetch: replaying }),
  new OpenAI({ baseURL: `${upstream.url}/v1`, apiKey: "sk-bench", maxRetries: 0, fetch: replaying }),
  false,
);
const replayMetered = casesFor(
  new Anthropic({ baseURL: upstream.url, apiKey: "sk-ant-bench", maxRetries: 0, fetch: replaying }),
  new OpenAI({ baseURL: `${upstream.url}/v1`, apiKey: "sk-bench", maxRetries: 0, fetch: replaying }),
  true,
);
const replayTimes = httpCases.map(() => ({
  bare: [] as number[],
  metered: [] as number[],
  bareCpu: [] as number[],
  meteredCpu: [] as number[],
}));
for (const [index] of httpCases.entries())
  for (let warm = 0; warm < 30; warm++) {
    await replayBare[index]!();
    await replayMetered[index]!();
  }
const replayMark = begin(`bench/budget: SDK adapters without the network (replayed bytes), ${CALLS} interleaved calls per case and run`);
for (let run = 0; run < RUNS; run++) {
  for (const [index] of httpCases.entries()) {
    const times = { bare: [] as number[], metered: [] as number[], bareCpu: [] as number[], meteredCpu: [] as number[] };
    for (let call = 0; call < CALLS; call++) {
      await timed(replayBare[index]!, times.bare, times.bareCpu);
      await timed(replayMetered[index]!, times.metered, times.meteredCpu);
    }
    const figures = replayTimes[index]!;
    figures.bare.push(median(times.bare));
    figures.metered.push(median(times.metered));
    figures.bareCpu.push(median(times.bareCpu));
    figures.meteredCpu.push(median(times.meteredCpu));
  }
}
const replaySamples = httpCases.flatMap(({ name }, index) => {
  const figures = replayTimes[index]!;
  return [toSample(`${name}: bare`, figures.bare, figures.bareCpu), toSample(`${name}: metered`, figures.metered, figures.meteredCpu)];
});

for (const [index, { name }] of chosen.entries()) {
  const figures = perCall[index]!;
  const bareSample = toSample(`${name}: bare`, figures.bare, figures.bareCpu);
  const meteredSample = toSample(`${name}: metered`, figures.metered, figures.meteredCpu);
  report(adapterMark, [bareSample, meteredSample], {
    extra: {
      "added ms/call (median, min)": (sample) =>
        sample === bareSample ? "" : `${(sample.median - bareSample.median).toFixed(3)}, ${(sample.min - bareSample.min).toFixed(3)}`,
      "added CPU ms/call": (sample) => (sample === bareSample ? "" : (median(sample.cpuMs) - median(bareSample.cpuMs)).toFixed(3)),
    },
  });
}
for (let index = 0; index < replaySamples.length; index += 2) {
  const [bareSample, meteredSample] = [replaySamples[index]!, replaySamples[index + 1]!];
  report(replayMark, [bareSample, meteredSample], {
    extra: {
      "added ms/call (median, min)": (sample) =>
        sample === bareSample ? "" : `${(sample.median - bareSample.median).toFixed(3)}, ${(sample.min - bareSample.min).toFixed(3)}`,
      "added CPU ms/call": (sample) => (sample === bareSample ? "" : (median(sample.cpuMs) - median(bareSample.cpuMs)).toFixed(3)),
    },
  });
}

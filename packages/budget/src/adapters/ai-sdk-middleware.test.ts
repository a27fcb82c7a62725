// The middleware against the real AI SDK, both majors people run: ai@7 (LanguageModelV4, the
// `ai` devDependency) and ai@6 (LanguageModelV3, installed as the `ai-v6` alias), each with the
// mock model its own `ai/test` exports.
import type { LanguageModelV3Middleware } from "@ai-sdk/provider-v3";
import type { LanguageModelV4Middleware, LanguageModelV4StreamPart } from "@ai-sdk/provider";
import * as ai7 from "ai";
import * as ai7Test from "ai/test";
import * as ai6 from "ai-v6";
import * as ai6Test from "ai-v6/test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { BudgetExceededError } from "../budget-exceeded-error.js";
import { createBudget } from "../create-budget.js";
import { createTokenCounter } from "../create-token-counter.js";
import { createTracker } from "../create-tracker.js";
import { budgetMiddleware, budgetMiddlewareV3, type BudgetMiddlewareOptions } from "./ai-sdk-middleware.js";

// Type-level: each export is the middleware type of its own major, without casts.
const budget0 = createBudget({ limits: {} });
const _v4: LanguageModelV4Middleware = budgetMiddleware({ budget: budget0 });
const _v3: LanguageModelV3Middleware = budgetMiddlewareV3({ budget: budget0 });
void ai6.wrapLanguageModel({ model: new ai6Test.MockLanguageModelV3(), middleware: budgetMiddlewareV3({ budget: budget0 }) });
void ai7.wrapLanguageModel({ model: new ai7Test.MockLanguageModelV4(), middleware: budgetMiddleware({ budget: budget0 }) });

// A full collection on demand, to observe what happens once the AI SDK's result is unreachable.
setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc") as () => void;

const usage = (input: number, output: number) => ({
  inputTokens: { total: input, noCache: input - 100, cacheRead: 100, cacheWrite: 0 },
  outputTokens: { total: output, text: output, reasoning: 0 },
});

/** One suite, run against each major: its module, its mock model and its middleware export. */
const majors = [
  {
    name: "ai@7 (LanguageModelV4)",
    sdk: ai7,
    Mock: ai7Test.MockLanguageModelV4,
    middleware: (options: BudgetMiddlewareOptions) => budgetMiddleware(options),
  },
  {
    name: "ai@6 (LanguageModelV3)",
    // The same calls exist in both majors; the v6 module is driven through v7's signatures here
    // (its own types are checked above).
    sdk: ai6 as unknown as typeof ai7,
    Mock: ai6Test.MockLanguageModelV3 as unknown as typeof ai7Test.MockLanguageModelV4,
    middleware: (options: BudgetMiddlewareOptions) => budgetMiddlewareV3(options) as unknown as ReturnType<typeof budgetMiddleware>,
  },
];

describe.each(majors)("budgetMiddleware with the real $name", ({ sdk, Mock, middleware }) => {
  const streamingModel = (words: number, delays: { initialDelayInMs?: null; chunkDelayInMs?: null } = {}) => {
    const chunks: LanguageModelV4StreamPart[] = [
      { type: "stream-start", warnings: [] },
      { type: "text-start", id: "t" },
      ...Array.from({ length: words }, (_, index) => ({ type: "text-delta" as const, id: "t", delta: ` word${index}` })),
      { type: "text-end", id: "t" },
      { type: "finish", finishReason: { unified: "stop", raw: "stop" }, usage: usage(400, words * 2) },
    ];
    return new Mock({ doStream: async () => ({ stream: sdk.simulateReadableStream({ chunks, ...delays }) }) });
  };

  it("generateText: reserves before the call and settles with the provider's usage", async () => {
    const budget = createBudget({ limits: { generation: 5000, sessionTotal: 20_000 } });
    const tracker = createTracker({ taskId: "t" });
    const inner = new Mock({
      doGenerate: async () => ({
        content: [{ type: "text", text: "done" }],
        finishReason: { unified: "stop", raw: "stop" },
        usage: usage(500, 40),
        warnings: [],
      }),
    });
    const model = sdk.wrapLanguageModel({ model: inner, middleware: middleware({ budget, tracker, repo: "backend-api" }) });
    const result = await sdk.generateText({ model, prompt: "Add a rate limit.", maxOutputTokens: 256 });
    expect(result.text).toBe("done");
    expect(inner.doGenerateCalls).toHaveLength(1);
    expect(budget.snapshot()).toMatchObject({ used: { contextRead: 500, generation: 40, sessionTotal: 540 }, reserved: { generation: 0 } });
    expect(tracker.report().byRepo["backend-api"]).toMatchObject({ totalTokens: 540, usage: { cacheReadTokens: 100 } });
    // The mock's model id has no price: booked, its dollars unknown, nothing thrown.
    expect(tracker.report().unpricedModels).toEqual(["mock-model-id"]);
  });

  it("a tool loop: every step is metered, and the tool call and its result count in the next prompt", async () => {
    const budget = createBudget({ limits: { generation: 5000 } });
    const steps: { tokens: number }[] = [];
    let call = 0;
    const inner = new Mock({
      doGenerate: async () =>
        call++ === 0
          ? {
              content: [
                { type: "tool-call", toolCallId: "c1", toolName: "readFile", input: JSON.stringify({ path: "src/rate-limit.ts" }) },
              ],
              finishReason: { unified: "tool-calls", raw: "tool_use" },
              usage: usage(300, 20),
              warnings: [],
            }
          : {
              content: [{ type: "text", text: "The limiter allows 100 requests a minute." }],
              finishReason: { unified: "stop", raw: "stop" },
              usage: usage(450, 12),
              warnings: [],
            },
    });
    budget.on("budget-warning", () => undefined);
    const model = sdk.wrapLanguageModel({ model: inner, middleware: middleware({ budget }) });
    const result = await sdk.generateText({
      model,
      prompt: "How strict is the rate limit?",
      tools: {
        readFile: sdk.tool({
          description: "Read a file",
          inputSchema: sdk.jsonSchema<{ path: string }>({ type: "object", properties: { path: { type: "string" } }, required: ["path"] }),
          execute: async ({ path }) => {
            steps.push({ tokens: budget.used("generation") });
            return `// ${path}\nexport const limit = { requests: 100, perMs: 60_000 };`;
          },
        }),
      },
      stopWhen: sdk.stepCountIs(3),
    });
    expect(result.text).toBe("The limiter allows 100 requests a minute.");
    expect(inner.doGenerateCalls).toHaveLength(2);
    // The first step was settled before the tool ran; both steps are booked.
    expect(steps).toEqual([{ tokens: 20 }]);
    expect(budget.snapshot()).toMatchObject({ used: { contextRead: 750, generation: 32 }, reserved: { contextRead: 0, generation: 0 } });
    const secondPrompt = JSON.stringify(inner.doGenerateCalls[1]!.prompt);
    expect(secondPrompt).toContain("rate-limit.ts");
    expect(secondPrompt).toContain("requests: 100");
  });

  it("refuses a call when the generation budget is spent, before the model runs", async () => {
    const budget = createBudget({ limits: { generation: 100 } });
    budget.charge({ spent: { generation: 100 } });
    const inner = new Mock({
      doGenerate: async () => ({ content: [], finishReason: { unified: "stop", raw: "stop" }, usage: usage(1, 1), warnings: [] }),
    });
    const model = sdk.wrapLanguageModel({ model: inner, middleware: middleware({ budget }) });
    await expect(sdk.generateText({ model, prompt: "x", maxRetries: 0 })).rejects.toSatisfy(
      (error: unknown) => BudgetExceededError.isInstance(error) || BudgetExceededError.isInstance((error as { cause?: unknown }).cause),
    );
    expect(inner.doGenerateCalls).toHaveLength(0);
  });

  it("streamText: stops a stream at the generation limit and keeps the partial text", async () => {
    using counter = createTokenCounter({ encoding: "o200k_base" });
    const budget = createBudget({ limits: { generation: 20 } });
    const model = sdk.wrapLanguageModel({ model: streamingModel(200), middleware: middleware({ budget, counter }) });
    const result = sdk.streamText({ model, prompt: "Write a lot." });
    const text = await result.text;
    expect(await result.finishReason).toBe("length");
    expect(text.length).toBeGreaterThan(0);
    expect(counter.count(text)).toBeLessThanOrEqual(20);
    expect(
      Array.from({ length: 200 }, (_, index) => ` word${index}`)
        .join("")
        .startsWith(text),
    ).toBe(true);
    expect(budget.used("generation")).toBeLessThanOrEqual(20);
    expect(budget.reserved("generation")).toBe(0);
  });

  it("streamText: settles a completed stream with the finish part's usage", async () => {
    const budget = createBudget({ limits: { generation: 1000 } });
    const model = sdk.wrapLanguageModel({ model: streamingModel(5), middleware: middleware({ budget }) });
    const result = sdk.streamText({ model, prompt: "Short." });
    expect(await result.text).toBe(" word0 word1 word2 word3 word4");
    expect(budget.snapshot()).toMatchObject({ used: { contextRead: 400, generation: 10 }, reserved: { generation: 0, contextRead: 0 } });
  });

  it("streamText: books what was counted when the consumer aborts the stream", async () => {
    const budget = createBudget({ limits: { generation: 10_000 } });
    const controller = new AbortController();
    const model = sdk.wrapLanguageModel({ model: streamingModel(100), middleware: middleware({ budget }) });
    const result = sdk.streamText({ model, prompt: "x", abortSignal: controller.signal });
    let seen = 0;
    try {
      for await (const _part of result.textStream) if (++seen === 10) controller.abort();
    } catch {
      // the AI SDK rejects an aborted stream
    }
    expect(budget.reserved("generation")).toBe(0);
    expect(budget.used("generation")).toBeGreaterThan(0);
  });

  it("streamText: reserves a ceiling of the prompt while the budget has room, and the exact count near its limit", async () => {
    using counter = createTokenCounter({ encoding: "o200k_base" });
    const prompt = "Add a rate limit of 100 requests per minute to the user API. ".repeat(20);
    const exact = counter.count(`user\n${prompt}\n`);
    const reservedAtCall = async (limits: Parameters<typeof createBudget>[0]["limits"]) => {
      const budget = createBudget({ limits });
      let reserved = -1;
      const inner = new Mock({
        doStream: async () => {
          reserved = budget.reserved("contextRead");
          return {
            stream: sdk.simulateReadableStream({
              chunks: [{ type: "finish", finishReason: { unified: "stop", raw: "stop" }, usage: usage(500, 0) }],
            }),
          };
        },
      });
      const model = sdk.wrapLanguageModel({ model: inner, middleware: middleware({ budget, counter }) });
      await sdk.streamText({ model, prompt, maxOutputTokens: 100 }).text;
      expect(budget.snapshot()).toMatchObject({ used: { contextRead: 500 }, reserved: { contextRead: 0, generation: 0 } });
      return reserved;
    };
    // Room for the ceiling: never below the count, and not tokenized.
    expect(await reservedAtCall({ generation: 10_000 })).toBeGreaterThan(exact);
    // A session total the ceiling would squeeze the output in: counted exactly.
    expect(await reservedAtCall({ sessionTotal: exact + 150 })).toBe(exact);
  });

  it("streamText: a model stream that fails midway is settled with what was counted, and the error reaches the caller", async () => {
    const budget = createBudget({ limits: { generation: 10_000 } });
    const parts: LanguageModelV4StreamPart[] = [
      { type: "stream-start", warnings: [] },
      { type: "text-start", id: "t" },
      { type: "text-delta", id: "t", delta: " partial answer" },
    ];
    const inner = new Mock({
      doStream: async () => ({
        stream: new ReadableStream({
          pull(controller) {
            const part = parts.shift();
            if (part) controller.enqueue(part);
            else controller.error(new Error("connection reset by the provider"));
          },
        }),
      }),
    });
    const model = sdk.wrapLanguageModel({ model: inner, middleware: middleware({ budget }) });
    const result = sdk.streamText({ model, prompt: "x", maxRetries: 0, onError: () => undefined });
    await expect(
      (async () => {
        for await (const _part of result.fullStream);
      })(),
    ).rejects.toThrow("connection reset by the provider");
    expect(budget.reserved("generation")).toBe(0);
    expect(budget.reserved("contextRead")).toBe(0);
    expect(budget.used("generation")).toBe(2);
  });

  it("streamText: a finish part whose usage cannot be read fails the stream and books the local count", async () => {
    const budget = createBudget({ limits: { generation: 10_000 } });
    const chunks: LanguageModelV4StreamPart[] = [
      { type: "stream-start", warnings: [] },
      { type: "text-start", id: "t" },
      { type: "text-delta", id: "t", delta: " partial answer" },
      { type: "text-end", id: "t" },
      { type: "finish", finishReason: { unified: "stop", raw: "stop" }, usage: usage(400, -5) },
    ];
    const inner = new Mock({ doStream: async () => ({ stream: sdk.simulateReadableStream({ chunks }) }) });
    const model = sdk.wrapLanguageModel({ model: inner, middleware: middleware({ budget }) });
    const result = sdk.streamText({ model, prompt: "x", maxRetries: 0, onError: () => undefined });
    await expect(
      (async () => {
        for await (const _part of result.fullStream);
      })(),
    ).rejects.toThrow(/token counts are never negative/);
    expect(budget.snapshot()).toMatchObject({ used: { generation: 2 }, reserved: { generation: 0, contextRead: 0 } });
  });

  it.each(["getReader", "for await", "pipeTo", "pipeThrough with options", "getReader of a frozen model stream"] as const)(
    "wrapStream read by %s (not the AI SDK's own pipe): the same parts, metered and settled",
    async (how) => {
      const budget = createBudget({ limits: { generation: 10_000 } });
      const inner = streamingModel(5);
      const { stream } = await middleware({ budget }).wrapStream({
        doStream: async () => {
          const result = await inner.doStream({ prompt: [{ role: "user", content: [{ type: "text", text: "x" }] }] } as never);
          // A stream that cannot take own methods is metered through a copy.
          return how === "getReader of a frozen model stream" ? { ...result, stream: Object.freeze(result.stream) } : result;
        },
        params: { prompt: [{ role: "user", content: [{ type: "text", text: "x" }] }] },
        model: inner,
      });
      const parts: { type: string }[] = [];
      const sink = new WritableStream<{ type: string }>({ write: (part) => void parts.push(part) });
      if (how === "getReader" || how === "getReader of a frozen model stream") {
        const reader = stream.getReader();
        for (let next = await reader.read(); !next.done; next = await reader.read()) parts.push(next.value as { type: string });
      } else if (how === "for await") {
        for await (const part of stream as unknown as AsyncIterable<{ type: string }>) parts.push(part);
      } else if (how === "pipeTo") await stream.pipeTo(sink as WritableStream<unknown>);
      else await stream.pipeThrough(new TransformStream(), { preventCancel: false }).pipeTo(sink as WritableStream<unknown>);
      expect(parts.map((part) => part.type)).toEqual(["stream-start", "text-start", ...Array(5).fill("text-delta"), "text-end", "finish"]);
      expect(budget.snapshot()).toMatchObject({ used: { contextRead: 400, generation: 10 }, reserved: { generation: 0, contextRead: 0 } });
    },
  );

  it.each(["textStream", "fullStream"] as const)(
    "streamText: a consumer that breaks out of %s with no abortSignal has the call booked once the result is dropped",
    async (projection) => {
      // The AI SDK keeps a result's stream for replay, so a break never cancels the model's stream:
      // only the result's collection shows the call is over (else the lease is held to its expiry).
      const budget = createBudget({ limits: { generation: 10_000 } });
      // No chunk delays: a pending timer would keep the stream reachable until the pipe stalls.
      const unpaced = streamingModel(100, { initialDelayInMs: null, chunkDelayInMs: null });
      const model = sdk.wrapLanguageModel({ model: unpaced, middleware: middleware({ budget }) });
      const consume = async () => {
        const result = sdk.streamText({ model, prompt: "x" });
        let seen = 0;
        for await (const _part of result[projection]) if (++seen === 10) break;
      };
      await consume();
      expect(budget.reserved("generation")).toBeGreaterThan(0);
      // Collection and the finalization callbacks after it take a few turns of the event loop.
      for (let turn = 0; turn < 50 && budget.reserved("generation") > 0; turn++) {
        collectGarbage();
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(budget.reserved("generation")).toBe(0);
      expect(budget.used("contextRead")).toBeGreaterThan(0);
    },
  );

  it("a usd limit: a model without a price fails closed for the next call", async () => {
    const budget = createBudget({ limits: { usd: 1 } });
    const unknown: string[] = [];
    budget.on("price-unknown", ({ model }) => unknown.push(model));
    const inner = new Mock({
      modelId: "acme-frontier-9",
      doGenerate: async () => ({
        content: [{ type: "text", text: "ok" }],
        finishReason: { unified: "stop", raw: "stop" },
        usage: usage(200, 5),
        warnings: [],
      }),
    });
    const model = sdk.wrapLanguageModel({ model: inner, middleware: middleware({ budget }) });
    expect((await sdk.generateText({ model, prompt: "x" })).text).toBe("ok");
    expect(unknown).toEqual(["acme-frontier-9"]);
    await expect(sdk.generateText({ model, prompt: "y", maxRetries: 0 })).rejects.toThrow(/no price is known for, so its usd limit/);
    expect(inner.doGenerateCalls).toHaveLength(1);
  });
});

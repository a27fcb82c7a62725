import { generateText, simulateReadableStream, streamText, wrapLanguageModel } from "ai";
import { MockLanguageModelV3 } from "ai/test";
import type { LanguageModelV3StreamPart } from "@ai-sdk/provider";
import { describe, expect, it } from "vitest";
import { BudgetExceededError } from "../budget-exceeded-error.js";
import { createBudget } from "../create-budget.js";
import { createTokenCounter } from "../create-token-counter.js";
import { createTracker } from "../create-tracker.js";
import { budgetMiddleware } from "./ai-sdk-middleware.js";

const usage = (input: number, output: number) => ({
  inputTokens: { total: input, noCache: input - 100, cacheRead: 100, cacheWrite: 0 },
  outputTokens: { total: output, text: output, reasoning: 0 },
});

function streamingModel(words: number) {
  const chunks: LanguageModelV3StreamPart[] = [
    { type: "stream-start", warnings: [] },
    { type: "text-start", id: "t" },
    ...Array.from({ length: words }, (_, index) => ({ type: "text-delta" as const, id: "t", delta: ` word${index}` })),
    { type: "text-end", id: "t" },
    { type: "finish", finishReason: { unified: "stop", raw: "stop" }, usage: usage(400, words * 2) },
  ];
  return new MockLanguageModelV3({ doStream: async () => ({ stream: simulateReadableStream({ chunks }) }) });
}

describe("budgetMiddleware for the Vercel AI SDK", () => {
  it("reserves before generate and settles with the provider's usage", async () => {
    const budget = createBudget({ limits: { generation: 5000, sessionTotal: 20_000 } });
    const tracker = createTracker({ taskId: "t" });
    const model = wrapLanguageModel({
      model: new MockLanguageModelV3({
        doGenerate: async () => ({
          content: [{ type: "text", text: "done" }],
          finishReason: { unified: "stop", raw: "stop" },
          usage: usage(500, 40),
          warnings: [],
        }),
      }),
      middleware: budgetMiddleware({ budget, tracker, repo: "backend-api" }),
    });
    const result = await generateText({ model, prompt: "Add a rate limit.", maxOutputTokens: 256 });
    expect(result.text).toBe("done");
    expect(budget.snapshot()).toMatchObject({ used: { contextRead: 500, generation: 40, sessionTotal: 540 }, reserved: { generation: 0 } });
    expect(tracker.report().byRepo["backend-api"]).toMatchObject({ totalTokens: 540, usage: { cacheReadTokens: 100 } });
  });

  it("refuses a call when the generation budget is spent, before the model runs", async () => {
    const budget = createBudget({ limits: { generation: 100 } });
    budget.charge({ generation: 100 });
    const inner = new MockLanguageModelV3({
      doGenerate: async () => ({ content: [], finishReason: { unified: "stop", raw: "stop" }, usage: usage(1, 1), warnings: [] }),
    });
    const model = wrapLanguageModel({ model: inner, middleware: budgetMiddleware({ budget }) });
    await expect(generateText({ model, prompt: "x", maxRetries: 0 })).rejects.toSatisfy(
      (error: unknown) => BudgetExceededError.isInstance(error) || BudgetExceededError.isInstance((error as { cause?: unknown }).cause),
    );
    expect(inner.doGenerateCalls).toHaveLength(0);
  });

  it("stops a stream at the generation limit and keeps the partial text", async () => {
    using counter = createTokenCounter({ encoding: "o200k_base" });
    const budget = createBudget({ limits: { generation: 20 } });
    const model = wrapLanguageModel({ model: streamingModel(200), middleware: budgetMiddleware({ budget, counter }) });
    const result = streamText({ model, prompt: "Write a lot." });
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

  it("settles a completed stream with the finish part's usage", async () => {
    const budget = createBudget({ limits: { generation: 1000 } });
    const model = wrapLanguageModel({ model: streamingModel(5), middleware: budgetMiddleware({ budget }) });
    const result = streamText({ model, prompt: "Short." });
    await result.text;
    expect(budget.snapshot()).toMatchObject({ used: { contextRead: 400, generation: 10 }, reserved: { generation: 0, contextRead: 0 } });
  });

  it("books what was counted when the consumer aborts the stream", async () => {
    const budget = createBudget({ limits: { generation: 10_000 } });
    const controller = new AbortController();
    const model = wrapLanguageModel({ model: streamingModel(100), middleware: budgetMiddleware({ budget }) });
    const result = streamText({ model, prompt: "x", abortSignal: controller.signal });
    let seen = 0;
    try {
      for await (const _part of result.textStream) if (++seen === 10) controller.abort();
    } catch {
      // the AI SDK rejects an aborted stream
    }
    expect(budget.reserved("generation")).toBe(0);
    expect(budget.used("generation")).toBeGreaterThan(0);
  });
});

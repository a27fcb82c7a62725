// meterOpenAI against the real `openai` package, talking to a scripted API on 127.0.0.1 that
// speaks the Chat Completions and Responses wire formats (JSON and SSE).
import { createScriptedUpstream } from "@bulkhead/test-utils";
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { BudgetExceededError } from "../budget-exceeded-error.js";
import { createBudget } from "../create-budget.js";
import { createTracker } from "../create-tracker.js";
import { priceUsage } from "../price-usage.js";
import { meterOpenAI } from "./meter-openai.js";

const client = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: "sk-test", maxRetries: 0 });
const messages = [{ role: "user" as const, content: "Add a rate limit to the user API." }];

describe("meterOpenAI with the real openai SDK", () => {
  it("chat.completions.create: clamps the output limit, settles cache reads, cache writes and reasoning, prices them", async () => {
    await using upstream = await createScriptedUpstream({
      turns: [
        {
          text: "Done.",
          usage: { uncachedInputTokens: 1000, cacheReadTokens: 6000, cacheWrite5mTokens: 3000, outputTokens: 500, reasoningTokens: 200 },
        },
      ],
    });
    const budget = createBudget({ limits: { generation: 800, usd: 5 } });
    const tracker = createTracker({ taskId: "t" });
    const openai: OpenAI = meterOpenAI(client(upstream.url), { budget, tracker });
    const { data, response } = await openai.chat.completions.create({ model: "gpt-5.1", messages }).withResponse();
    expect(data.choices[0]!.message.content).toBe("Done.");
    expect(response.status).toBe(200);
    expect(upstream.requests[0]!.body).toMatchObject({ max_completion_tokens: 800 });
    const usage = {
      inputTokens: 10_000,
      uncachedInputTokens: 1000,
      cacheReadTokens: 6000,
      cacheWrite5mTokens: 3000,
      outputTokens: 500,
      reasoningTokens: 200,
    };
    expect(tracker.report().usage).toMatchObject(usage);
    expect(budget.snapshot()).toMatchObject({
      used: { contextRead: 10_000, generation: 500 },
      reserved: { generation: 0, contextRead: 0 },
    });
    expect(budget.used("usd")).toBeCloseTo(priceUsage(usage, { model: "gpt-5.1" }).usd, 12);
  });

  it("chat.completions.create({ stream: true }): asks for usage, books it, keeps the SDK's Stream", async () => {
    await using upstream = await createScriptedUpstream({
      turns: [{ text: "one two three", usage: { uncachedInputTokens: 40, outputTokens: 3 } }],
    });
    const budget = createBudget({ limits: { generation: 100 } });
    const openai = meterOpenAI(client(upstream.url), { budget, price: false });
    const stream = await openai.chat.completions.create({ model: "gpt-5.1", messages, stream: true, max_tokens: 50 });
    expect(stream.controller).toBeInstanceOf(AbortController);
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(text).toBe("one two three");
    expect(upstream.requests[0]!.body).toMatchObject({ max_tokens: 50, stream_options: { include_usage: true } });
    expect(budget.snapshot()).toMatchObject({ used: { contextRead: 40, generation: 3 }, reserved: { generation: 0 } });
  });

  it.each(["chat", "responses"] as const)(
    "a %s stream left before its usage arrives books the output counted from what was delivered",
    async (api) => {
      const words = Array.from({ length: 40 }, (_, index) => ` word${index}`);
      await using upstream = await createScriptedUpstream({ turns: [{ text: words, eventDelayMs: 1 }] });
      const budget = createBudget({ limits: { generation: 5000 } });
      const openai = meterOpenAI(client(upstream.url), { budget, price: false });
      let text = "";
      if (api === "chat") {
        const stream = await openai.chat.completions.create({ model: "gpt-5.1", messages, stream: true });
        for await (const chunk of stream) if ((text += chunk.choices[0]?.delta.content ?? "").length > 60) break;
      } else {
        const stream = await openai.responses.create({ model: "gpt-5.1", input: "Add a rate limit.", stream: true });
        for await (const event of stream) if (event.type === "response.output_text.delta" && (text += event.delta).length > 60) break;
      }
      expect(budget.reserved("generation")).toBe(0);
      // Every delta delivered is counted (o200k_base: " wordN" is two tokens), none that was not.
      const delivered = text.split(" ").length - 1;
      expect(budget.used("generation")).toBeGreaterThanOrEqual(2 * delivered);
      expect(budget.used("generation")).toBeLessThanOrEqual(2 * (delivered + 2));
    },
  );

  it("responses.create, streaming and not, with cache writes and reasoning", async () => {
    await using upstream = await createScriptedUpstream({
      turns: [
        { text: "Planned.", usage: { uncachedInputTokens: 100, cacheWrite5mTokens: 900, outputTokens: 60, reasoningTokens: 40 } },
        { text: "Streamed answer.", usage: { uncachedInputTokens: 200, cacheReadTokens: 800, outputTokens: 30 } },
      ],
    });
    const budget = createBudget({ limits: { generation: 10_000 } });
    const tracker = createTracker({ taskId: "t" });
    const openai = meterOpenAI(client(upstream.url), { budget, tracker, defaultMaxOutputTokens: 2000 });
    const response = await openai.responses.create({ model: "gpt-5.5", input: "Plan the rate limiter.", instructions: "Be brief." });
    expect(response.output_text).toBe("Planned.");
    const stream = await openai.responses.create({ model: "gpt-5.5", input: [{ role: "user", content: "Now write it." }], stream: true });
    let streamed = "";
    for await (const event of stream) if (event.type === "response.output_text.delta") streamed += event.delta;
    expect(streamed).toBe("Streamed answer.");
    expect(upstream.requests.map((request) => request.body?.max_output_tokens)).toEqual([2000, 2000]);
    expect(tracker.report().usage).toMatchObject({
      inputTokens: 2000,
      cacheWrite5mTokens: 900,
      cacheReadTokens: 800,
      outputTokens: 90,
      reasoningTokens: 40,
    });
    expect(budget.snapshot()).toMatchObject({ used: { contextRead: 2000, generation: 90 }, reserved: { generation: 0 } });
    expect(tracker.report().unpricedModels).toEqual([]);
  });

  it("books a paid response nobody reads (asResponse() kept unread), and the body stays readable", async () => {
    await using upstream = await createScriptedUpstream({
      turns: [{ text: "Unread.", usage: { uncachedInputTokens: 70, outputTokens: 9 } }],
    });
    const budget = createBudget({ limits: { generation: 600 } });
    const openai = meterOpenAI(client(upstream.url), { budget, price: false });
    const response = await openai.chat.completions.create({ model: "gpt-5.1", messages }).asResponse();
    for (let turn = 0; turn < 1000 && budget.reserved("generation") > 0; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(budget.snapshot()).toMatchObject({ used: { contextRead: 70, generation: 9 }, reserved: { generation: 0 } });
    expect(((await response.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content).toBe("Unread.");
  });

  it("refuses with BudgetExceededError before anything is sent, and is not retried as a connection error", async () => {
    await using upstream = await createScriptedUpstream();
    const budget = createBudget({ limits: { generation: 10 } });
    budget.charge({ spent: { generation: 10 } });
    const openai = meterOpenAI(new OpenAI({ baseURL: `${upstream.url}/v1`, apiKey: "sk-test" }), { budget });
    await expect(openai.chat.completions.create({ model: "gpt-5.1", messages })).rejects.toBeInstanceOf(BudgetExceededError);
    await expect(openai.responses.create({ model: "gpt-5.1", input: "x" })).rejects.toBeInstanceOf(BudgetExceededError);
    expect(upstream.requests).toHaveLength(0);
  });

  it("releases the reservation when the API answers with an error", async () => {
    await using upstream = await createScriptedUpstream({ turns: [{ error: { status: 400, message: "bad request" } }] });
    const budget = createBudget({ limits: { generation: 1000 } });
    const openai = meterOpenAI(client(upstream.url), { budget });
    await expect(openai.responses.create({ model: "gpt-5.1", input: "x" })).rejects.toThrow("bad request");
    expect(budget.snapshot()).toMatchObject({ used: { generation: 0 }, reserved: { generation: 0, contextRead: 0 } });
  });
});

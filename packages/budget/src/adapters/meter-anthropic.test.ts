// meterAnthropic against the real @anthropic-ai/sdk, talking to a scripted Messages API on
// 127.0.0.1 that speaks the documented JSON and SSE wire format.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import Anthropic from "@anthropic-ai/sdk";
import { createScriptedUpstream } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { BudgetExceededError } from "../budget-exceeded-error.js";
import { createBudget } from "../create-budget.js";
import { createTracker } from "../create-tracker.js";
import { priceUsage } from "../price-usage.js";
import { meterAnthropic } from "./meter-anthropic.js";

const params = {
  model: "claude-sonnet-4-6",
  max_tokens: 1024,
  messages: [{ role: "user" as const, content: "Add a rate limit to the user API." }],
};
const client = (url: string) => new Anthropic({ baseURL: url, apiKey: "sk-ant-test", maxRetries: 0 });
const words = (count: number) => Array.from({ length: count }, (_, index) => ` word${index}`);

describe("meterAnthropic with the real Anthropic SDK", () => {
  it("messages.create: reserves, lowers max_tokens, settles with the reported usage, prices it, and keeps APIPromise", async () => {
    await using upstream = await createScriptedUpstream({
      turns: [
        { text: "Done.", usage: { uncachedInputTokens: 20, cacheReadTokens: 1000, cacheWrite1hTokens: 14_000, outputTokens: 12 } },
        { text: "Again." },
      ],
    });
    const budget = createBudget({ limits: { generation: 600, sessionTotal: 50_000 } });
    const tracker = createTracker({ taskId: "t" });
    // The real type in, the real type out: no cast.
    const anthropic: Anthropic = meterAnthropic(client(upstream.url), { budget, tracker, repo: "backend-api" });
    const message = await anthropic.messages.create(params);
    expect(message.content).toEqual([{ type: "text", text: "Done." }]);
    expect(upstream.requests[0]!.body).toMatchObject({ max_tokens: 600 });
    expect(budget.snapshot()).toMatchObject({
      used: { contextRead: 15_020, generation: 12, sessionTotal: 15_032 },
      reserved: { sessionTotal: 0, generation: 0 },
    });
    const usage = { inputTokens: 15_020, uncachedInputTokens: 20, cacheReadTokens: 1000, cacheWrite1hTokens: 14_000, outputTokens: 12 };
    expect(tracker.report().usd).toBeCloseTo(priceUsage(usage, { model: "claude-sonnet-4-6" }).usd, 12);
    expect(tracker.report().usage.cacheWrite1hTokens).toBe(14_000);
    const { data, response, request_id } = await anthropic.messages.create(params).withResponse();
    expect(data.content[0]).toMatchObject({ text: "Again." });
    expect(response.status).toBe(200);
    expect(request_id === null || typeof request_id === "string").toBe(true);
    expect(budget.used("generation")).toBeGreaterThan(12);
  });

  it("books a paid response nobody reads (asResponse() kept unread), and the body stays readable", async () => {
    await using upstream = await createScriptedUpstream({
      turns: [{ text: "Unread.", usage: { uncachedInputTokens: 70, outputTokens: 9 } }],
    });
    const budget = createBudget({ limits: { generation: 600 } });
    const anthropic = meterAnthropic(client(upstream.url), { budget, price: false });
    const response = await anthropic.messages.create(params).asResponse();
    // No clock: the event loop turns until the usage is booked, a bounded number of times.
    for (let turn = 0; turn < 1000 && budget.reserved("generation") > 0; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(budget.snapshot()).toMatchObject({ used: { contextRead: 70, generation: 9 }, reserved: { generation: 0 } });
    expect(((await response.json()) as { content: unknown }).content).toEqual([{ type: "text", text: "Unread." }]);
    expect(budget.used("generation")).toBe(9);
  });

  it("books a paid stream nobody iterates (asResponse() kept unread), and the bytes wait for the caller", async () => {
    await using upstream = await createScriptedUpstream({
      turns: [{ text: words(12), usage: { uncachedInputTokens: 80, outputTokens: 24 } }],
    });
    const budget = createBudget({ limits: { generation: 600 } });
    const anthropic = meterAnthropic(client(upstream.url), { budget, price: false });
    const response = await anthropic.messages.create({ ...params, stream: true }).asResponse();
    for (let turn = 0; turn < 1000 && budget.reserved("generation") > 0; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(budget.snapshot()).toMatchObject({ used: { contextRead: 80, generation: 24 }, reserved: { generation: 0 } });
    const text = await response.text();
    expect(text.startsWith("event: message_start")).toBe(true);
    expect(text.trimEnd().endsWith('data: {"type":"message_stop"}')).toBe(true);
    expect(budget.used("generation")).toBe(24);
  });

  it("refuses before anything is sent when the budget has nothing left", async () => {
    await using upstream = await createScriptedUpstream();
    const budget = createBudget({ limits: { generation: 300 } });
    budget.charge({ spent: { generation: 300 } });
    const anthropic = meterAnthropic(client(upstream.url), { budget });
    await expect(anthropic.messages.create(params)).rejects.toBeInstanceOf(BudgetExceededError);
    await expect(anthropic.beta.messages.create(params)).rejects.toBeInstanceOf(BudgetExceededError);
    expect(upstream.requestsFor("anthropic-messages")).toHaveLength(0);
  });

  it("messages.create({ stream: true }): a real Stream (controller, tee, toReadableStream), metered", async () => {
    await using upstream = await createScriptedUpstream({
      turns: [
        { text: words(10), usage: { uncachedInputTokens: 30, outputTokens: 20 } },
        { text: words(10), usage: { uncachedInputTokens: 30, outputTokens: 20 } },
      ],
    });
    const budget = createBudget({ limits: { generation: 1000 } });
    const anthropic = meterAnthropic(client(upstream.url), { budget, price: false });
    const stream = await anthropic.messages.create({ ...params, stream: true });
    expect(stream.controller).toBeInstanceOf(AbortController);
    const [left, right] = stream.tee();
    const types: string[] = [];
    for await (const event of left) types.push(event.type);
    let rightCount = 0;
    for await (const _event of right) rightCount++;
    expect(types.at(-1)).toBe("message_stop");
    expect(rightCount).toBe(types.length);
    expect(budget.snapshot()).toMatchObject({ used: { contextRead: 30, generation: 20 }, reserved: { generation: 0 } });
    const second = await anthropic.messages.create({ ...params, stream: true });
    const bytes = await new Response(second.toReadableStream()).text();
    expect(bytes).toContain("message_stop");
    expect(budget.used("generation")).toBe(40);
  });

  it("a stream's bytes reach the caller exactly as the API sent them (asResponse), and it is still metered", async () => {
    await using upstream = await createScriptedUpstream({
      turns: [{ text: words(30), chunkChars: 7, usage: { uncachedInputTokens: 30, cacheReadTokens: 500, outputTokens: 25 } }],
    });
    const budget = createBudget({ limits: { generation: 1000 } });
    const anthropic = meterAnthropic(client(upstream.url), { budget, price: false });
    const response = await anthropic.messages.create({ ...params, stream: true }).asResponse();
    const text = await response.text();
    const sent = upstream.requests[0]!.sentEvents.map(({ event, data }) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`).join("");
    expect(text).toBe(sent);
    expect(budget.snapshot()).toMatchObject({ used: { contextRead: 530, generation: 25 }, reserved: { generation: 0 } });
  });

  it("messages.stream() and finalMessage() are metered and clamped (they were not before)", async () => {
    await using upstream = await createScriptedUpstream({
      turns: [{ text: words(8), usage: { uncachedInputTokens: 1225, outputTokens: 200 } }],
    });
    const budget = createBudget({ limits: { generation: 500 } });
    const anthropic = meterAnthropic(client(upstream.url), { budget });
    const message = await anthropic.messages.stream(params).finalMessage();
    expect(message.usage).toMatchObject({ input_tokens: 1225, output_tokens: 200 });
    expect(upstream.requests[0]!.body).toMatchObject({ max_tokens: 500, stream: true });
    expect(budget.snapshot()).toMatchObject({ used: { contextRead: 1225, generation: 200 }, reserved: { generation: 0 } });
  });

  it("beta.messages.create and beta.messages.stream are metered", async () => {
    await using upstream = await createScriptedUpstream({
      turns: [
        { text: "beta", usage: { uncachedInputTokens: 50, outputTokens: 5 } },
        { text: words(3), usage: { uncachedInputTokens: 60, outputTokens: 6 } },
      ],
    });
    const budget = createBudget({ limits: { generation: 100 } });
    const anthropic = meterAnthropic(client(upstream.url), { budget });
    await anthropic.beta.messages.create({ ...params, betas: ["context-management-2025-06-27"] });
    await anthropic.beta.messages.stream(params).finalMessage();
    expect(upstream.requests.map((request) => request.body?.max_tokens)).toEqual([100, 95]);
    expect(budget.snapshot()).toMatchObject({ used: { contextRead: 110, generation: 11 }, reserved: { generation: 0 } });
  });

  it("cuts a stream cleanly at the reserved output (max_tokens), and books what arrived", async () => {
    await using upstream = await createScriptedUpstream({
      turns: [{ text: words(500), usage: { uncachedInputTokens: 30, outputTokens: 1000 } }],
    });
    const budget = createBudget({ limits: { generation: 40 } });
    const anthropic = meterAnthropic(client(upstream.url), { budget, price: false });
    const message = await anthropic.messages.stream(params).finalMessage();
    expect(message.stop_reason).toBe("max_tokens");
    const text = message.content[0]!.type === "text" ? message.content[0]!.text : "";
    expect(words(500).join("").startsWith(text)).toBe(true);
    expect(text.length).toBeLessThan(words(500).join("").length);
    // The delta that would pass the reservation is not let through: what arrived fits in it.
    expect(budget.used("generation")).toBeGreaterThan(35);
    expect(budget.used("generation")).toBeLessThanOrEqual(40);
    expect(budget.used("contextRead")).toBe(30);
    expect(budget.reserved("generation")).toBe(0);
  });

  it("books what arrived when the caller aborts a stream", async () => {
    await using upstream = await createScriptedUpstream({
      turns: [{ text: words(200), eventDelayMs: 2, usage: { uncachedInputTokens: 30 } }],
    });
    const budget = createBudget({ limits: { generation: 5000 } });
    const anthropic = meterAnthropic(client(upstream.url), { budget, price: false });
    const stream = await anthropic.messages.create({ ...params, stream: true });
    let deltas = 0;
    for await (const event of stream) if (event.type === "content_block_delta" && ++deltas === 5) stream.controller.abort();
    expect(budget.reserved("generation")).toBe(0);
    expect(budget.used("generation")).toBeGreaterThanOrEqual(5);
    expect(budget.used("contextRead")).toBe(30);
  });

  it("keeps countTokens, models and the rest of the client working", async () => {
    await using upstream = await createScriptedUpstream({ countTokens: () => 42 });
    const budget = createBudget({ limits: { generation: 100 } });
    const anthropic = meterAnthropic(client(upstream.url), { budget });
    expect(await anthropic.messages.countTokens({ model: params.model, messages: params.messages })).toEqual({ input_tokens: 42 });
    expect(anthropic.baseURL).toBe(upstream.url);
    expect(budget.snapshot().used.sessionTotal).toBe(0);
    expect(() => meterAnthropic({ messages: {} } as never, { budget })).toThrow("expected an Anthropic client with middleware support");
  });

  it("a null usage field in message_delta does not overwrite message_start's count", async () => {
    // The SDK's own types allow nulls in message_delta's usage; the API sends them for fields it has no update for.
    const events = [
      [
        "message_start",
        {
          type: "message_start",
          message: {
            id: "msg_1",
            type: "message",
            role: "assistant",
            model: "claude-sonnet-4-6",
            content: [],
            stop_reason: null,
            stop_sequence: null,
            usage: { input_tokens: 1225, cache_read_input_tokens: 0, cache_creation_input_tokens: 0, output_tokens: 1 },
          },
        },
      ],
      ["content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }],
      ["content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Done." } }],
      ["content_block_stop", { type: "content_block_stop", index: 0 }],
      [
        "message_delta",
        {
          type: "message_delta",
          delta: { stop_reason: "end_turn", stop_sequence: null },
          usage: { input_tokens: null, cache_read_input_tokens: null, cache_creation_input_tokens: null, output_tokens: 200 },
        },
      ],
      ["message_stop", { type: "message_stop" }],
    ] as const;
    const server = createServer((request, response) => {
      request.resume();
      response.writeHead(200, { "content-type": "text/event-stream" });
      for (const [name, data] of events) response.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
      response.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const budget = createBudget({ limits: { generation: 1000 } });
      const anthropic = meterAnthropic(client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`), { budget, price: false });
      await anthropic.messages.stream(params).finalMessage();
      expect(budget.snapshot().used).toMatchObject({ contextRead: 1225, generation: 200 });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

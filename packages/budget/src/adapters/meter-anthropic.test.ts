import { describe, expect, it } from "vitest";
import { BudgetExceededError } from "../budget-exceeded-error.js";
import { createBudget } from "../create-budget.js";
import { createTracker } from "../create-tracker.js";
import { meterAnthropic, type AnthropicParams } from "./meter-anthropic.js";

/** A stand-in for the Anthropic SDK client, answering with the documented response shapes. */
function fakeAnthropic(words = 50) {
  const calls: AnthropicParams[] = [];
  const client = {
    messages: {
      async create(params: AnthropicParams) {
        calls.push(params);
        if (!params.stream) {
          return {
            id: "msg_01",
            type: "message",
            role: "assistant",
            model: params.model,
            content: [{ type: "text", text: "Done." }],
            stop_reason: "end_turn",
            usage: { input_tokens: 20, cache_creation_input_tokens: 0, cache_read_input_tokens: 1000, output_tokens: 12 },
          };
        }
        const controller = new AbortController();
        return {
          controller,
          async *[Symbol.asyncIterator]() {
            yield {
              type: "message_start",
              message: { id: "msg_02", usage: { input_tokens: 30, cache_read_input_tokens: 0, output_tokens: 1 } },
            };
            yield { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } };
            for (let index = 0; index < words && !controller.signal.aborted; index++)
              yield { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: ` word${index}` } };
            yield { type: "content_block_stop", index: 0 };
            yield { type: "message_delta", delta: { stop_reason: "end_turn" }, usage: { output_tokens: words * 2 } };
            yield { type: "message_stop" };
          },
        };
      },
    },
  };
  return { client, calls };
}

describe("meterAnthropic", () => {
  const params = {
    model: "claude-sonnet-4-5",
    max_tokens: 1024,
    messages: [{ role: "user", content: "Add a rate limit to the user API." }],
  };

  it("reserves before the call, settles with the reported usage, and prices it", async () => {
    const { client, calls } = fakeAnthropic();
    const budget = createBudget({ limits: { generation: 10_000, sessionTotal: 50_000 } });
    const tracker = createTracker({ taskId: "t" });
    const anthropic = meterAnthropic(client, { budget, tracker, repo: "backend-api" });
    await anthropic.messages.create(params);
    expect(calls[0]!.max_tokens).toBe(1024);
    expect(budget.snapshot()).toMatchObject({
      used: { contextRead: 1020, generation: 12, sessionTotal: 1032 },
      reserved: { sessionTotal: 0 },
    });
    expect(tracker.report().usd).toBeCloseTo((20 * 3 + 1000 * 0.3 + 12 * 15) / 1e6, 12);
  });

  it("lowers max_tokens to what the generation budget has left, and refuses when nothing is", async () => {
    const { client, calls } = fakeAnthropic();
    const budget = createBudget({ limits: { generation: 300 } });
    const anthropic = meterAnthropic(client, { budget });
    await anthropic.messages.create(params);
    expect(calls[0]!.max_tokens).toBe(300);
    budget.charge({ generation: 300 });
    await expect(anthropic.messages.create(params)).rejects.toBeInstanceOf(BudgetExceededError);
    expect(calls).toHaveLength(1);
  });

  it("meters a stream, aborts it at the reserved output, and books the usage", async () => {
    const { client } = fakeAnthropic(500);
    const budget = createBudget({ limits: { generation: 40 } });
    const anthropic = meterAnthropic(client, { budget, price: false });
    const stream = (await anthropic.messages.create({ ...params, stream: true })) as AsyncIterable<{ type: string }> & {
      controller: AbortController;
    };
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    expect(stream.controller.signal.aborted).toBe(true);
    expect(types.filter((type) => type === "content_block_delta").length).toBeLessThan(40);
    expect(types).not.toContain("message_stop");
    expect(budget.used("generation")).toBeGreaterThanOrEqual(40);
    expect(budget.used("generation")).toBeLessThanOrEqual(42);
    expect(budget.used("contextRead")).toBe(30);
  });

  it("uses the provider's totals when a stream completes", async () => {
    const { client } = fakeAnthropic(10);
    const budget = createBudget({ limits: { generation: 1000 } });
    const stream = (await meterAnthropic(client, { budget, price: false }).messages.create({
      ...params,
      stream: true,
    })) as AsyncIterable<unknown>;
    for await (const _event of stream);
    expect(budget.used("generation")).toBe(20);
  });

  it("keeps the SDK client's prototype methods, bound to the original objects", async () => {
    // Like the real SDK: classes whose methods live on prototypes and use `this`.
    class Messages {
      readonly calls: string[] = [];
      async create(params: AnthropicParams) {
        this.calls.push(`create ${params.model}`);
        return { id: "m", content: [], usage: { input_tokens: 5, output_tokens: 3 } };
      }
      async countTokens(params: AnthropicParams) {
        this.calls.push("countTokens");
        return { input_tokens: params.messages.length * 10 };
      }
      stream() {
        this.calls.push("stream");
        return "a MessageStream";
      }
    }
    class Client {
      readonly messages = new Messages();
      readonly apiKey = "sk-test";
      baseURL() {
        return `https://api.example.com/${this.apiKey.length}`;
      }
    }
    const budget = createBudget({ limits: { sessionTotal: 10_000 } });
    const original = new Client();
    const anthropic = meterAnthropic(original, { budget, price: false });
    await anthropic.messages.create(params);
    expect(await anthropic.messages.countTokens(params)).toEqual({ input_tokens: 10 });
    expect(anthropic.messages.stream()).toBe("a MessageStream");
    expect(anthropic.baseURL()).toBe("https://api.example.com/7");
    expect(anthropic.apiKey).toBe("sk-test");
    expect(original.messages.calls).toEqual(["create claude-sonnet-4-5", "countTokens", "stream"]);
    expect(budget.used("sessionTotal")).toBe(8);
  });
});

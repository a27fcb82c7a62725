import { createBudget, normalizeUsage, usageOnly } from "@bulkhead/budget";
import { createScriptedUpstream, type ScriptedUpstream } from "@bulkhead/test-utils";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { createGateway, type Gateway } from "./index.js";

const CANARY = "sk-proj-canary-openai-77a1c3";
const MODEL = "gpt-4.1";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(options: Parameters<typeof createScriptedUpstream>[0] = {}) {
  const upstream = await createScriptedUpstream(options);
  const gateway = await createGateway({ upstreams: { openai: upstream.url }, credentials: { openai: { apiKey: CANARY } }, env: {} });
  cleanups.push(
    () => upstream.close(),
    () => gateway.close(),
  );
  return { upstream, gateway };
}

const client = (gateway: Gateway, token: string) => new OpenAI({ baseURL: gateway.openaiBaseUrl, apiKey: token, maxRetries: 0 });

/** The upstream's usage as the gateway must book it (OpenAI cache writes as 5-minute writes). */
function expected(upstream: ScriptedUpstream, index: number) {
  const request = upstream.requests.filter((entry) => entry.sentUsage !== undefined)[index]!;
  const usage = usageOnly(normalizeUsage("openai", request.sentUsage));
  const details = (request.sentUsage!.input_tokens_details ?? request.sentUsage!.prompt_tokens_details) as { cache_write_tokens?: number };
  const writes = details?.cache_write_tokens ?? 0;
  if (writes > 0 && usage.cacheWrite5mTokens === 0) {
    usage.uncachedInputTokens -= writes;
    usage.cacheWrite5mTokens = writes;
  }
  return usage;
}

const usage = { uncachedInputTokens: 400, cacheReadTokens: 1_600, cacheWrite5mTokens: 100, outputTokens: 80, reasoningTokens: 30 };

describe("createGateway with the OpenAI SDK", () => {
  it("Responses, streamed and not: books exactly the upstream's usage (cached, cache writes, reasoning)", async () => {
    const { upstream, gateway } = await setup({ whenEmpty: { text: "Hello from responses.", usage } });
    const session = gateway.addSession({ sessionId: "o1", budget: createBudget({ limits: { sessionTotal: 1_000_000 } }) });
    const openai = client(gateway, session.token);
    const plain = await openai.responses.create({ model: MODEL, input: "hi" });
    expect(plain.output_text).toBe("Hello from responses.");
    const stream = openai.responses.stream({ model: MODEL, input: "hi" });
    const final = await stream.finalResponse();
    expect(final.output_text).toBe("Hello from responses.");
    const records = gateway.audit("o1");
    expect(records.map((record) => record.outcome)).toEqual(["ok", "ok"]);
    expect(records[0]!.usage).toEqual(expected(upstream, 0));
    expect(records[1]!.usage).toEqual(expected(upstream, 1));
    expect(records[1]!.usage).toMatchObject({
      inputTokens: 2_100,
      cacheReadTokens: 1_600,
      cacheWrite5mTokens: 100,
      uncachedInputTokens: 400,
      reasoningTokens: 30,
    });
    expect(upstream.requests[0]!.headers.authorization).toBe(`Bearer ${CANARY}`);
    expect(JSON.stringify([plain, final])).not.toContain(CANARY);
  });

  it("Chat Completions streams: asks upstream for usage, books it, and hides the extra chunk from a client that did not ask", async () => {
    const { upstream, gateway } = await setup({ whenEmpty: { text: "chat hello", usage } });
    const session = gateway.addSession({ sessionId: "o2", budget: createBudget({ limits: {} }) });
    const openai = client(gateway, session.token);
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of await openai.chat.completions.create({
      model: MODEL,
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    }))
      chunks.push(chunk);
    expect(upstream.requests[0]!.body!.stream_options).toEqual({ include_usage: true });
    expect(chunks.some((chunk) => chunk.usage)).toBe(false);
    expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? "").join("")).toBe("chat hello");
    const withUsage: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of await openai.chat.completions.create({
      model: MODEL,
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "hi" }],
    }))
      withUsage.push(chunk);
    expect(withUsage.at(-1)!.usage).toMatchObject({ prompt_tokens: 2_100, completion_tokens: 80 });
    const plain = await openai.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "hi" }] });
    expect(plain.choices[0]!.message.content).toBe("chat hello");
    const records = gateway.audit("o2");
    for (const [index, record] of records.entries()) expect(record.usage).toEqual(expected(upstream, index));
  });

  it("clamps max_output_tokens and max_completion_tokens to the generation left, and refuses with insufficient_quota", async () => {
    const { upstream, gateway } = await setup({ whenEmpty: { text: "x", usage: { outputTokens: 20 } } });
    const budget = createBudget({ limits: { generation: 40 } });
    const session = gateway.addSession({ sessionId: "o3", budget });
    const openai = client(gateway, session.token);
    await openai.responses.create({ model: MODEL, input: "hi", max_output_tokens: 1_000 });
    expect(upstream.requests[0]!.body!.max_output_tokens).toBe(40);
    await openai.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "hi" }] });
    expect(upstream.requests[1]!.body!.max_completion_tokens).toBe(20);
    const refused = await openai.chat.completions
      .create({ model: MODEL, messages: [{ role: "user", content: "hi" }] })
      .catch((caught: unknown) => caught);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    expect((refused as InstanceType<typeof OpenAI.RateLimitError>).code).toBe("insufficient_quota");
    expect((refused as InstanceType<typeof OpenAI.RateLimitError>).headers?.get("x-should-retry")).toBe("false");
    expect(String((refused as Error).message)).toContain("generation budget");
    expect(upstream.requests).toHaveLength(2);
  });

  it("ends streams at the generation budget as the APIs do: finish_reason length, response.completed incomplete", async () => {
    const words = Array.from({ length: 300 }, (_, index) => ` w${index}`);
    const { gateway } = await setup({ whenEmpty: { text: words, usage: { outputTokens: 600 } } });
    const budget = createBudget({ limits: { generation: 60 } });
    const session = gateway.addSession({ sessionId: "o4", budget });
    const openai = client(gateway, session.token);
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of await openai.chat.completions.create({
      model: MODEL,
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "hi" }],
    }))
      chunks.push(chunk);
    expect(chunks.find((chunk) => chunk.choices[0]?.finish_reason)?.choices[0]!.finish_reason).toBe("length");
    const first = gateway.audit("o4")[0]!;
    expect(first.outcome).toBe("stopped");
    expect(chunks.at(-1)!.usage!.completion_tokens).toBe(first.usage!.outputTokens);
    // Within one delta (at most 3 tokens here) of the limit, never over it.
    expect(first.usage!.outputTokens).toBeLessThanOrEqual(60);
    expect(first.usage!.outputTokens).toBeGreaterThan(60 - 3);

    const second = gateway.addSession({ sessionId: "o4b", budget: createBudget({ limits: { generation: 60 } }) });
    const final = await client(gateway, second.token).responses.stream({ model: MODEL, input: "hi" }).finalResponse();
    expect(final.status).toBe("incomplete");
    expect(final.incomplete_details).toEqual({ reason: "max_output_tokens" });
    expect(final.usage!.output_tokens).toBeLessThanOrEqual(60);
    expect(gateway.audit("o4b")[0]).toMatchObject({ outcome: "stopped", usage: { outputTokens: final.usage!.output_tokens } });
    expect(budget.used("generation")).toBe(first.usage!.outputTokens);
  });

  it("charges function_call_output and role tool results to the tool budget, then disables tools", async () => {
    const { upstream, gateway } = await setup({ whenEmpty: { text: "ok" } });
    const budget = createBudget({ limits: { toolCalls: 3 } });
    const session = gateway.addSession({ sessionId: "o5", budget });
    const openai = client(gateway, session.token);
    const tools: OpenAI.Responses.Tool[] = [
      { type: "function", name: "shell", description: "run", parameters: { type: "object", properties: {} }, strict: false },
    ];
    await openai.responses.create({
      model: MODEL,
      tools,
      input: [
        { role: "user", content: "ls" },
        { type: "function_call", call_id: "call_1", name: "shell", arguments: "{}" },
        { type: "function_call_output", call_id: "call_1", output: "file-one file-two file-three file-four" },
      ],
    });
    expect(upstream.requests[0]!.body!.tool_choice).toBe("none");
    expect(JSON.stringify(upstream.requests[0]!.body!.input)).toContain("tool-call budget");
    await openai.chat.completions.create({
      model: MODEL,
      tools: [{ type: "function", function: { name: "shell", parameters: { type: "object", properties: {} } } }],
      messages: [
        { role: "user", content: "ls" },
        { role: "assistant", tool_calls: [{ id: "call_2", type: "function", function: { name: "shell", arguments: "{}" } }] },
        { role: "tool", tool_call_id: "call_2", content: "more output" },
      ],
    });
    expect(upstream.requests[1]!.body!.tool_choice).toBe("none");
    expect(gateway.audit("o5").every((record) => record.budget.some((act) => act.action === "tools-disabled"))).toBe(true);
  });

  it("refuses once the session total is spent, with one handover-required; books an unknown model's usage unpriced", async () => {
    const { upstream, gateway } = await setup({ whenEmpty: { text: "x", usage: { uncachedInputTokens: 500, outputTokens: 600 } } });
    const budget = createBudget({ id: "o6", limits: { sessionTotal: 1_000 } });
    const session = gateway.addSession({ sessionId: "o6", budget });
    const events: string[] = [];
    gateway.on("handover-required", () => events.push("handover"));
    gateway.on("price-unknown", ({ model }) => events.push(`price-unknown ${model}`));
    const openai = client(gateway, session.token);
    await openai.responses.create({ model: "scripted-model-x", input: "hi" });
    const refused = await openai.responses.create({ model: MODEL, input: "hi" }).catch((caught: unknown) => caught);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    expect(String((refused as Error).message)).toContain("session-total budget");
    expect(events).toEqual(["price-unknown scripted-model-x", "handover"]);
    expect(gateway.audit("o6")[0]).toMatchObject({ costUsd: null, usage: { outputTokens: 600 } });
    expect(upstream.requests).toHaveLength(1);
  });

  it("answers a wrong token and an unknown path in OpenAI's format", async () => {
    const { gateway } = await setup();
    const session = gateway.addSession({ sessionId: "o7", budget: createBudget({ limits: {} }) });
    const wrong = await client(gateway, "sk-wrong")
      .responses.create({ model: MODEL, input: "hi" })
      .catch((caught: unknown) => caught);
    expect(wrong).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((wrong as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe("invalid_api_key");
    const unknown = await client(gateway, session.token)
      .models.list()
      .catch((caught: unknown) => caught);
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
  });
});

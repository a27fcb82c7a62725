import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { normalizeUsage, USAGE_SOURCES } from "./normalize-usage.js";

const count = fc.nat({ max: 5_000_000 });

describe("normalizeUsage", () => {
  it("reads Anthropic usage, where input_tokens excludes the cache", () => {
    expect(
      normalizeUsage("anthropic", {
        input_tokens: 12,
        cache_read_input_tokens: 9000,
        cache_creation_input_tokens: 1500,
        cache_creation: { ephemeral_5m_input_tokens: 500, ephemeral_1h_input_tokens: 1000 },
        output_tokens: 340,
        service_tier: "standard",
        server_tool_use: { web_search_requests: 1 },
      }),
    ).toEqual({
      inputTokens: 10512,
      uncachedInputTokens: 12,
      cacheReadTokens: 9000,
      cacheWrite5mTokens: 500,
      cacheWrite1hTokens: 1000,
      outputTokens: 340,
      reasoningTokens: 0,
      unknown: { service_tier: "standard", server_tool_use: { web_search_requests: 1 } },
    });
  });

  it("takes Anthropic's cache-write breakdown when the total is not reported", () => {
    expect(
      normalizeUsage("anthropic", { input_tokens: 1, cache_creation: { ephemeral_5m_input_tokens: 5, ephemeral_1h_input_tokens: 3 } }),
    ).toMatchObject({ inputTokens: 9, cacheWrite5mTokens: 5, cacheWrite1hTokens: 3 });
  });

  it("tells the Responses and Agent SDK snake_case shapes by either of their fields", () => {
    expect(normalizeUsage("openai", { input_tokens: 10 })).toMatchObject({ inputTokens: 10, outputTokens: 0 });
    expect(normalizeUsage("openai", { output_tokens: 4 })).toMatchObject({ inputTokens: 0, outputTokens: 4 });
    expect(normalizeUsage("claude-agent-sdk", { input_tokens: 10 })).toMatchObject({ inputTokens: 10, outputTokens: 0 });
    expect(normalizeUsage("claude-agent-sdk", { output_tokens: 4 })).toMatchObject({ inputTokens: 0, outputTokens: 4 });
  });

  it("reads OpenAI Chat Completions and Responses usage, where input includes the cache", () => {
    const chat = normalizeUsage("openai", {
      prompt_tokens: 2006,
      completion_tokens: 300,
      total_tokens: 2306,
      prompt_tokens_details: { cached_tokens: 1920, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 64 },
    });
    expect(chat).toMatchObject({
      inputTokens: 2006,
      uncachedInputTokens: 86,
      cacheReadTokens: 1920,
      outputTokens: 300,
      reasoningTokens: 64,
      unknown: { "prompt_tokens_details.audio_tokens": 0 },
    });
    const responses = normalizeUsage("openai", {
      input_tokens: 100,
      input_tokens_details: { cached_tokens: 40 },
      output_tokens: 20,
      output_tokens_details: { reasoning_tokens: 5 },
      total_tokens: 120,
    });
    expect(responses).toMatchObject({
      inputTokens: 100,
      uncachedInputTokens: 60,
      cacheReadTokens: 40,
      outputTokens: 20,
      reasoningTokens: 5,
      unknown: {},
    });
  });

  it("reads the AI SDK's provider, v6 and v5 shapes", () => {
    const expected = {
      inputTokens: 100,
      uncachedInputTokens: 50,
      cacheReadTokens: 40,
      cacheWrite5mTokens: 10,
      outputTokens: 30,
      reasoningTokens: 8,
    };
    expect(
      normalizeUsage("ai-sdk", {
        inputTokens: { total: 100, noCache: 50, cacheRead: 40, cacheWrite: 10 },
        outputTokens: { total: 30, text: 22, reasoning: 8 },
      }),
    ).toMatchObject(expected);
    expect(
      normalizeUsage("ai-sdk", {
        inputTokens: 100,
        inputTokenDetails: { noCacheTokens: 50, cacheReadTokens: 40, cacheWriteTokens: 10 },
        outputTokens: 30,
        outputTokenDetails: { textTokens: 22, reasoningTokens: 8 },
        totalTokens: 130,
      }),
    ).toMatchObject(expected);
    expect(
      normalizeUsage("ai-sdk", { inputTokens: 100, cachedInputTokens: 40, outputTokens: 30, reasoningTokens: 8, totalTokens: 130 }),
    ).toMatchObject({ ...expected, uncachedInputTokens: 60, cacheWrite5mTokens: 0 });
    expect(normalizeUsage("ai-sdk", { inputTokens: { total: undefined }, outputTokens: { total: undefined } })).toMatchObject({
      inputTokens: 0,
      outputTokens: 0,
    });
  });

  it("reads Claude Agent SDK model usage and Claude Code stream usage", () => {
    expect(
      normalizeUsage("claude-agent-sdk", {
        inputTokens: 3,
        outputTokens: 120,
        cacheReadInputTokens: 2000,
        cacheCreationInputTokens: 500,
        webSearchRequests: 0,
        costUSD: 0.01,
        contextWindow: 200000,
      }),
    ).toEqual({
      inputTokens: 2503,
      uncachedInputTokens: 3,
      cacheReadTokens: 2000,
      cacheWrite5mTokens: 500,
      cacheWrite1hTokens: 0,
      outputTokens: 120,
      reasoningTokens: 0,
      unknown: {},
    });
    // The SDK's own field names: 14,000 one-hour writes are one-hour writes.
    expect(
      normalizeUsage("claude-agent-sdk", {
        inputTokens: 10,
        outputTokens: 300,
        thinkingTokens: 120,
        cacheReadInputTokens: 0,
        cacheCreationInputTokens: 15_000,
        cacheCreationEphemeral5mInputTokens: 500,
        cacheCreationEphemeral1hInputTokens: 14_000,
      }),
    ).toMatchObject({ inputTokens: 15_010, cacheWrite5mTokens: 1000, cacheWrite1hTokens: 14_000, reasoningTokens: 120, unknown: {} });
    expect(normalizeUsage("claude-code-stream", { input_tokens: 4, cache_read_input_tokens: 100, output_tokens: 7 })).toMatchObject({
      inputTokens: 104,
      outputTokens: 7,
    });
    expect(
      normalizeUsage("claude-code-stream", {
        input_tokens: 4,
        output_tokens: 700,
        output_tokens_details: { thinking_tokens: 500 },
        server_tool_use: { web_search_requests: 1, web_fetch_requests: 0 },
        service_tier: "standard",
      }),
    ).toMatchObject({
      outputTokens: 700,
      reasoningTokens: 500,
      unknown: { server_tool_use: { web_search_requests: 1, web_fetch_requests: 0 }, service_tier: "standard" },
    });
  });

  it("reads OpenAI cache writes (Chat and Responses) and Codex's exec --json usage", () => {
    expect(
      normalizeUsage("openai", {
        prompt_tokens: 10_000,
        prompt_tokens_details: { cached_tokens: 6000, cache_write_tokens: 3000 },
        completion_tokens: 500,
        completion_tokens_details: { reasoning_tokens: 200 },
      }),
    ).toMatchObject({
      inputTokens: 10_000,
      uncachedInputTokens: 1000,
      cacheReadTokens: 6000,
      cacheWrite5mTokens: 3000,
      reasoningTokens: 200,
      unknown: {},
    });
    expect(
      normalizeUsage("openai", {
        input_tokens: 10_000,
        input_tokens_details: {
          cached_tokens: 0,
          cache_write_tokens: 4000,
          cache_write_tokens_details: { ttl_30m_tokens: 1000, ttl_12h_tokens: 3000 },
        },
        output_tokens: 10,
        output_tokens_details: { reasoning_tokens: 0 },
      }),
    ).toMatchObject({ uncachedInputTokens: 6000, cacheWrite5mTokens: 1000, cacheWrite1hTokens: 3000, unknown: {} });
    expect(
      normalizeUsage("codex", {
        input_tokens: 24_763,
        cached_input_tokens: 24_448,
        cache_write_input_tokens: 100,
        output_tokens: 122,
        reasoning_output_tokens: 64,
      }),
    ).toEqual({
      inputTokens: 24_763,
      uncachedInputTokens: 215,
      cacheReadTokens: 24_448,
      cacheWrite5mTokens: 100,
      cacheWrite1hTokens: 0,
      outputTokens: 122,
      reasoningTokens: 64,
      unknown: {},
    });
  });

  it.each([
    ["anthropic", { input_tokens: -1 }, "anthropic usage field input_tokens is -1: token counts are never negative"],
    ["anthropic", { output_tokens: Number.NaN }, "anthropic usage field output_tokens is null: expected a finite number of tokens"],
    ["openai", { prompt_tokens: "12" }, 'openai usage field prompt_tokens is "12": expected a finite number of tokens'],
    [
      "openai",
      { prompt_tokens: 10, prompt_tokens_details: { cached_tokens: 11 } },
      "openai usage field cached + cache write tokens is 11: is larger than the total it is part of (10)",
    ],
    ["ai-sdk", { inputTokens: 1.5 }, "ai-sdk usage field inputTokens is 1.5: token counts are whole numbers"],
    [
      "anthropic",
      { cache_creation_input_tokens: 10, cache_creation: { ephemeral_5m_input_tokens: 3, ephemeral_1h_input_tokens: 3 } },
      "do not add up",
    ],
    ["anthropic", "nope", "expected the provider's usage object"],
  ] as const)("refuses bad %s usage %j", (source, raw, message) => {
    expect(() => normalizeUsage(source, raw)).toThrow(message);
    try {
      normalizeUsage(source, raw);
    } catch (error) {
      expect((error as { code: string }).code).toBe("INVALID_USAGE");
    }
  });

  it("property: parts add up to totals and nothing is negative, for every source", () => {
    const raws = {
      anthropic: fc.record({
        input_tokens: count,
        cache_read_input_tokens: count,
        cache_creation_input_tokens: count,
        output_tokens: count,
        extra_field: fc.string(),
      }),
      "claude-code-stream": fc.record({ input_tokens: count, cache_read_input_tokens: count, output_tokens: count }),
      openai: fc.tuple(count, count, count, count).map(([input, cached, output, reasoning]) => ({
        prompt_tokens: input + cached,
        prompt_tokens_details: { cached_tokens: cached },
        completion_tokens: output + reasoning,
        completion_tokens_details: { reasoning_tokens: reasoning },
        extra_field: 1,
      })),
      "ai-sdk": fc.tuple(count, count, count, count, count).map(([noCache, read, write, text, reasoning]) => ({
        inputTokens: { total: noCache + read + write, noCache, cacheRead: read, cacheWrite: write },
        outputTokens: { total: text + reasoning, text, reasoning },
        extra_field: true,
      })),
      "claude-agent-sdk": fc.record({
        inputTokens: count,
        outputTokens: count,
        cacheReadInputTokens: count,
        cacheCreationInputTokens: count,
        extra_field: fc.constant("x"),
      }),
      codex: fc.tuple(count, count, count, count, count).map(([uncached, cached, write, output, reasoning]) => ({
        input_tokens: uncached + cached + write,
        cached_input_tokens: cached,
        cache_write_input_tokens: write,
        output_tokens: output + reasoning,
        reasoning_output_tokens: reasoning,
        extra_field: 2,
      })),
    } as const;
    for (const source of USAGE_SOURCES) {
      fc.assert(
        fc.property(raws[source], (raw) => {
          const usage = normalizeUsage(source, raw);
          expect(usage.inputTokens).toBe(
            usage.uncachedInputTokens + usage.cacheReadTokens + usage.cacheWrite5mTokens + usage.cacheWrite1hTokens,
          );
          expect(usage.reasoningTokens).toBeLessThanOrEqual(usage.outputTokens);
          for (const [key, value] of Object.entries(usage)) if (key !== "unknown") expect(value).toBeGreaterThanOrEqual(0);
          if ("extra_field" in raw) expect(usage.unknown.extra_field).toEqual(raw.extra_field);
        }),
        { numRuns: 300 },
      );
    }
  });
});

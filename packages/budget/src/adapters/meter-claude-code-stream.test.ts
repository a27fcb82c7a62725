import { createReadStream, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createBudget } from "../create-budget.js";
import { createTracker } from "../create-tracker.js";
import { priceUsage } from "../price-usage.js";
import { meterClaudeCodeStream } from "./meter-claude-code-stream.js";

const fixture = new URL("../../test/fixtures/claude-code-stream.jsonl", import.meta.url);

describe("meterClaudeCodeStream", () => {
  it("counts each assistant message once, reconciles with the result line, and skips bad lines", async () => {
    const tracker = createTracker({ taskId: "rate-limit" });
    const budget = createBudget({ limits: { sessionTotal: 100_000 } });
    const result = await meterClaudeCodeStream(createReadStream(fixture), { budget, tracker, repo: "backend-api" });
    expect(result).toMatchObject({
      sessionId: "5f0c2a8e-6f4b-4f5e-9d51-3c1d1c1b2a01",
      model: "claude-sonnet-4-5-20250929",
      resultSubtype: "success",
      isError: false,
      numTurns: 3,
      costUsd: 0.0312,
      assistantMessages: 2,
      toolUses: 1,
      resultText: "Added the rate-limit middleware.",
      skippedLines: [5],
      stoppedBy: null,
    });
    expect(result.usage).toEqual({
      inputTokens: 12_710,
      uncachedInputTokens: 10,
      cacheReadTokens: 6200,
      cacheWrite5mTokens: 6500,
      cacheWrite1hTokens: 0,
      outputTokens: 290,
      reasoningTokens: 0,
    });
    expect(budget.used("sessionTotal")).toBe(13_000);
    expect(tracker.report().byRepo["backend-api"]!.totalTokens).toBe(13_000);
  });

  it("calls onStop once when the budget runs out, and reads chunks split mid-line", async () => {
    const budget = createBudget({ limits: { sessionTotal: 7000 } });
    const text = readFileSync(fixture, "utf8");
    const chunks = text.match(/[\s\S]{1,37}/g)!;
    const stops: string[] = [];
    const result = await meterClaudeCodeStream(chunks, { budget, onStop: (reason) => stops.push(reason) });
    expect(stops).toEqual(["session-total"]);
    expect(result.stoppedBy).toBe("session-total");
    expect(budget.exhausted).toBe(true);
  });

  it("feeds a usd limit with the run's reported cost, or with the budget's own pricing, never both", async () => {
    const capped = createBudget({ limits: { usd: 0.03 } });
    const stops: string[] = [];
    await meterClaudeCodeStream(createReadStream(fixture), { budget: capped, onStop: (reason) => stops.push(reason) });
    expect(capped.used("usd")).toBe(0.0312);
    expect(stops).toEqual(["usd"]);
    const priced = createBudget({ limits: {}, pricing: { model: "claude-sonnet-4-5" } });
    const run = await meterClaudeCodeStream(createReadStream(fixture), { budget: priced });
    // Priced from the tokens at list prices, and the reported cost not added on top.
    expect(priced.used("usd")).toBeCloseTo(priceUsage(run.usage, { model: "claude-sonnet-4-5" }).usd, 10);
  });

  it("reads --include-partial-messages stream_event usage mid-run: thinking tokens, nulls, subagents, each message once", async () => {
    const budget = createBudget({ limits: { sessionTotal: 100_000 } });
    const line = (value: unknown) => `${JSON.stringify(value)}\n`;
    const start = (id: string, input: number, parent: string | null) =>
      line({
        type: "stream_event",
        parent_tool_use_id: parent,
        session_id: "s",
        event: {
          type: "message_start",
          message: { id, model: "claude-opus-5-5", usage: { input_tokens: input, cache_read_input_tokens: 0, output_tokens: 1 } },
        },
      });
    const delta = (output: number, thinking: number, parent: string | null) =>
      line({
        type: "stream_event",
        parent_tool_use_id: parent,
        session_id: "s",
        event: {
          type: "message_delta",
          delta: { stop_reason: "end_turn" },
          usage: {
            input_tokens: null,
            cache_read_input_tokens: null,
            output_tokens: output,
            output_tokens_details: { thinking_tokens: thinking },
          },
        },
      });
    const seen: number[] = [];
    async function* lines() {
      yield start("msg_main", 1225, null);
      seen.push(budget.used("sessionTotal"));
      yield start("msg_sub", 300, "toolu_task");
      yield delta(200, 150, null);
      seen.push(budget.used("sessionTotal"));
      yield delta(40, 0, "toolu_task");
      // The assistant line repeats the message's usage, with fewer output tokens than the delta said.
      yield line({
        type: "assistant",
        session_id: "s",
        message: { id: "msg_main", model: "claude-opus-5-5", content: [], usage: { input_tokens: 1225, output_tokens: 120 } },
      });
      yield line({
        type: "assistant",
        session_id: "s",
        parent_tool_use_id: "toolu_task",
        message: { id: "msg_sub", content: [], usage: { input_tokens: 300, output_tokens: 40 } },
      });
    }
    const result = await meterClaudeCodeStream(lines(), { budget });
    expect(seen).toEqual([1226, 1225 + 1 + 300 + 1 + 199]);
    expect(result.usage).toMatchObject({ inputTokens: 1525, outputTokens: 240, reasoningTokens: 150 });
    expect(result.assistantMessages).toBe(2);
    expect(result.model).toBe("claude-opus-5-5");
    expect(budget.used("sessionTotal")).toBe(1765);
  });
});

import { emptyUsage } from "@bulkhead/core";
import { describe, expect, it } from "vitest";
import { createTracker } from "./create-tracker.js";

describe("createTracker", () => {
  it("reports seed 000's token consumption by kind, repo and operation, with dollars and cache hit rate", () => {
    const tracker = createTracker({ taskId: "rate-limit" });
    const read = tracker.startSpan({ repo: "backend-api", operation: "read", model: "claude-sonnet-4-5" });
    read.record({ ...emptyUsage(), inputTokens: 42_000, uncachedInputTokens: 12_000, cacheReadTokens: 30_000, outputTokens: 500 });
    read.end();
    const edit = tracker.startSpan({ repo: "backend-api", operation: "edit", model: "claude-sonnet-4-5" });
    edit.record({ ...emptyUsage(), inputTokens: 0, outputTokens: 8_000 });
    const tests = tracker.startSpan({ repo: "backend-api", operation: "tool:test" });
    tests.record({ ...emptyUsage(), inputTokens: 3_000, uncachedInputTokens: 3_000, outputTokens: 200 });
    tracker
      .startSpan({ repo: "shared-types", operation: "read" })
      .record({ ...emptyUsage(), inputTokens: 1_000, uncachedInputTokens: 1_000 });

    const report = tracker.report();
    expect(report).toMatchObject({
      taskId: "rate-limit",
      contextReadTokens: 43_000,
      generationTokens: 8_500,
      toolCallTokens: 3_200,
      totalTokens: 54_700,
    });
    expect(report.totalTokens).toBe(report.usage.inputTokens + report.usage.outputTokens);
    expect(report.byRepo["backend-api"]!.totalTokens).toBe(53_700);
    expect(report.byRepo["shared-types"]!.totalTokens).toBe(1_000);
    expect(Object.keys(report.byOperation).sort()).toEqual(["edit", "read", "tool:test"]);
    expect(report.cacheHitRate).toBeCloseTo(30_000 / 46_000, 10);
    expect(report.usd).toBeCloseTo((12_000 * 3 + 30_000 * 0.3 + 8_500 * 15) / 1e6, 10);
    expect(report.byRepo["shared-types"]!.usd).toBeUndefined();
    expect(() => read.record(emptyUsage())).toThrow("span backend-api/read has ended: start a new span");
    // A model without a price never throws after the call: tokens recorded, dollars unknown.
    const usdBefore = tracker.report().usd;
    tracker.startSpan({ repo: "x", operation: "y", model: "nope" }).record({ ...emptyUsage(), inputTokens: 10, uncachedInputTokens: 10 });
    expect(tracker.report()).toMatchObject({ unpricedModels: ["nope"], usd: usdBefore, totalTokens: 54_710 });
    expect(tracker.report().byRepo["x"]!.usd).toBeUndefined();
    expect(() => tracker.startSpan({ repo: "", operation: "y" })).toThrow("invalid repo");
  });
});

describe("OpenTelemetry export", () => {
  it("gives each span the GenAI usage attributes and a namespaced cost", async () => {
    const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = await import("@opentelemetry/sdk-trace-base");
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const tracker = createTracker({ taskId: "rate-limit", tracer: provider.getTracer("bulkhead") });
    const span = tracker.startSpan({ repo: "backend-api", operation: "edit", model: "claude-sonnet-4-5" });
    span.record({
      ...emptyUsage(),
      inputTokens: 1000,
      uncachedInputTokens: 200,
      cacheReadTokens: 700,
      cacheWrite5mTokens: 100,
      outputTokens: 50,
      reasoningTokens: 10,
    });
    span.record({ ...emptyUsage(), inputTokens: 10, uncachedInputTokens: 10, outputTokens: 5 });
    span.end();
    tracker.startSpan({ repo: "backend-api", operation: "tool:test" }).end();
    const [chat, tool] = exporter.getFinishedSpans();
    expect(chat!.name).toBe("chat claude-sonnet-4-5");
    expect(chat!.attributes).toMatchObject({
      "gen_ai.operation.name": "chat",
      "gen_ai.request.model": "claude-sonnet-4-5",
      "gen_ai.usage.input_tokens": 1010,
      "gen_ai.usage.output_tokens": 55,
      "gen_ai.usage.cache_read.input_tokens": 700,
      "gen_ai.usage.cache_creation.input_tokens": 100,
      "gen_ai.usage.reasoning.output_tokens": 10,
      "bulkhead.task.id": "rate-limit",
      "bulkhead.repo": "backend-api",
    });
    expect(chat!.attributes["bulkhead.usage.cost_usd"]).toBeCloseTo(tracker.report().usd!, 12);
    expect(tool!.name).toBe("execute_tool backend-api");
  });
});

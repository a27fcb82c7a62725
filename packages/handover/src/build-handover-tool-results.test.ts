// The handover's tool-call line from what the gateway charged: the tool results it booked on the
// tool-call budget move out of the context read (the upstream counts them as prompt tokens), so
// the line is not "0 tokens" and the kinds still add up to the total.
import { emptyUsage, InvalidArgumentError, parseTaskSpec, type UsageReport } from "@bulkhead/core";
import { describe, expect, it } from "vitest";
import { buildHandover } from "./build-handover.js";
import { parseHandover } from "./parse-handover.js";
import { renderHandover } from "./render-handover.js";

const spec = parseTaskSpec(`
task: "Add rate limiting"
id: rate-limit
context_scope:
  repos:
    - name: backend-api
      paths: ["src/"]
  max_files: 15
  max_tokens: 50000
ownership:
  primary_repo: backend-api
`);

// What a gateway tracker reports: every call under one model operation, so no tool-call tokens.
const report: UsageReport = {
  taskId: "rate-limit",
  contextReadTokens: 12_000,
  generationTokens: 800,
  toolCallTokens: 0,
  totalTokens: 12_800,
  usage: { ...emptyUsage(), inputTokens: 12_000, uncachedInputTokens: 12_000, outputTokens: 800 },
  byRepo: {},
  byOperation: {},
};
const build = (toolResultTokens?: number) =>
  buildHandover({
    spec,
    changes: [],
    report,
    summary: ["Added the middleware"],
    ...(toolResultTokens === undefined ? {} : { toolResultTokens }),
    now: () => new Date("2026-01-01T00:00:00Z"),
  });

describe("the handover's tool-call line", () => {
  it("shows the tool results the gateway charged, out of the context read, the total unchanged", async () => {
    const markdown = renderHandover(await build(3_200));
    expect(markdown).toContain(
      ["- Context read: 8,800 tokens", "- Code generation: 800 tokens", "- Tool calls: 3,200 tokens", "- Total: 12,800 tokens"].join("\n"),
    );
    // It reads back as it was written.
    expect(parseHandover(markdown).tokens).toMatchObject({ contextReadTokens: 8_800, toolCallTokens: 3_200, totalTokens: 12_800 });
    // The usage (what the upstream sent) is the tracker's, untouched.
    expect((await build(3_200)).tokens?.usage).toEqual(report.usage);
  });

  it("is the tracker's report when the gateway charged none, and never takes more than the context read", async () => {
    expect((await build()).tokens).toEqual(report);
    expect((await build(0)).tokens).toEqual(report);
    expect((await build(50_000)).tokens).toMatchObject({ contextReadTokens: 0, toolCallTokens: 12_000, totalTokens: 12_800 });
  });

  it("refuses a count that is not a whole number of tokens, naming the option", async () => {
    for (const bad of [-1, 1.5, Number.NaN])
      await expect(build(bad)).rejects.toSatisfy(
        (error: unknown) => InvalidArgumentError.isInstance(error) && String((error as Error).message).includes("options.toolResultTokens"),
      );
  });
});

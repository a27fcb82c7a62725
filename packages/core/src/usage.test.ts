import { describe, expect, it } from "vitest";
import { addUsage, addUsageReports, emptyUsage, usageReportSchema, type UsageReport } from "./usage.js";

const usage = (inputTokens: number, outputTokens: number) => ({
  ...emptyUsage(),
  inputTokens,
  uncachedInputTokens: inputTokens,
  outputTokens,
});

const report = (scale: number, priced: boolean, repo: string): UsageReport => ({
  taskId: `task-${scale}`,
  contextReadTokens: 10 * scale,
  generationTokens: 2 * scale,
  toolCallTokens: scale,
  totalTokens: 13 * scale,
  ...(priced ? { usd: 0.5 * scale } : {}),
  usage: usage(11 * scale, 2 * scale),
  byRepo: { [repo]: { usage: usage(11 * scale, 2 * scale), totalTokens: 13 * scale, ...(priced ? { usd: 0.5 * scale } : {}) } },
  byOperation: { read: { usage: usage(10 * scale, 0), totalTokens: 10 * scale } },
});

describe("addUsageReports", () => {
  it("adds every count, by repo and operation too, and keeps the first report's task id", () => {
    const total = addUsageReports(report(1, true, "api"), report(2, true, "api"));
    expect(usageReportSchema.parse(total)).toEqual(total);
    expect(total).toMatchObject({
      taskId: "task-1",
      contextReadTokens: 30,
      generationTokens: 6,
      toolCallTokens: 3,
      totalTokens: 39,
      usd: 1.5,
    });
    expect(total.usage).toEqual(addUsage(usage(11, 2), usage(22, 4)));
    expect(total.byRepo).toEqual({ api: { usage: usage(33, 6), totalTokens: 39, usd: 1.5 } });
    expect(total.byOperation).toEqual({ read: { usage: usage(30, 0), totalTokens: 30 } });
  });

  it("prices the sum only where both sides were priced, and keeps a repo only one side has", () => {
    const total = addUsageReports(report(1, true, "api"), report(2, false, "web"));
    expect(total.usd).toBeUndefined();
    expect(total.byRepo).toEqual({
      api: { usage: usage(11, 2), totalTokens: 13, usd: 0.5 },
      web: { usage: usage(22, 4), totalTokens: 26 },
    });
    const { taskId: _, ...untitled } = report(1, false, "api");
    expect(addUsageReports(untitled, report(1, false, "api")).taskId).toBeUndefined();
  });
});

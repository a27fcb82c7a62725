import { describe, expect, it } from "vitest";
import { runAiSdkBudgetExample } from "./run-example.js";

describe("the AI SDK budget example", () => {
  it("settles full answers, cuts the overshooting one at the limit and refuses the next before the model runs", async () => {
    const lines: string[] = [];
    const { calls, modelCalls, refusal, snapshot, report } = await runAiSdkBudgetExample({ log: (line) => lines.push(line) });
    expect(calls.map((call) => call.finishReason)).toEqual(["stop", "stop", "length"]);
    expect(calls[2]!.characters).toBe(" step".length * 20);
    expect(modelCalls).toBe(3);
    expect(refusal).toMatchObject({ code: "BUDGET_EXCEEDED", kind: "generation", data: { available: 0 } });
    expect(snapshot.used.generation).toBe(100);
    expect(snapshot.reserved.generation).toBe(0);
    expect(report.generationTokens).toBe(100);
    expect(report.totalTokens).toBe(snapshot.used.sessionTotal);
    expect(report.byRepo["backend-api"]?.totalTokens).toBe(report.totalTokens);
    expect(lines[3]).toMatch(/^call 4: refused before the model ran/);
  });
});

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { runGates } from "./run-gates.js";
import type { FunctionGate, GateResult } from "./submission.js";

const context = { dir: "/nonexistent", files: ["a.ts"], issueId: "RATE-1" };
const run = (gate: FunctionGate, timeoutMs = 8000) =>
  runGates([{ name: gate.name, function: true, timeoutMs }], { ...context, functions: new Map([[gate.name, gate]]), onGateEnd: () => {} });

describe("runGates: a function gate's timeout timer", () => {
  // Fake timers count the timers still pending, so a leaked 8 s timer is seen without waiting for it.
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it("is cleared when the gate passes, fails or throws", async () => {
    expect(vi.getTimerCount()).toBe(0);
    expect((await run({ name: "pass", run: () => ({ ok: true, output: "fine" }) })).ok).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    expect((await run({ name: "fail", run: async () => ({ ok: false, output: "lint" }) })).ok).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
    const thrown = await run({
      name: "throws",
      run: () => {
        throw new Error("boom");
      },
    });
    expect(thrown.results).toEqual([expect.objectContaining({ name: "throws", ok: false, output: "gate threw: boom" })]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("fails the gate closed when it fires, and is gone afterwards", async () => {
    const ended: GateResult[] = [];
    const pending = runGates([{ name: "slow", function: true, timeoutMs: 8000 }], {
      ...context,
      functions: new Map([["slow", { name: "slow", run: () => new Promise<never>(() => {}) }]]),
      onGateEnd: (result) => ended.push(result),
    });
    await vi.advanceTimersByTimeAsync(7999);
    expect(ended).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(await pending).toMatchObject({ ok: false, results: [{ name: "slow", ok: false, output: "timed out after 8000 ms" }] });
    expect(ended).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });
});

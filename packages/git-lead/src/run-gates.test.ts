import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createTempDir } from "@bulkhead/test-utils";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { isGone, until } from "../test/process-gone.js";
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

describe("runGates: a command gate's process group", () => {
  const gate = (dir: string, then: string, timeoutMs?: number) => ({
    name: "spawns",
    command: ["sh", "-c", `sleep 1000 & echo $! > ${join(dir, "child.pid")}; ${then}`],
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
  const options = (dir: string) => ({ dir, files: [], issueId: "T-1", functions: new Map(), onGateEnd: () => {} });

  it("at its time limit is killed with what it started, and fails closed with the reason", async () => {
    await using dir = createTempDir();
    const result = await runGates([gate(dir.path, "wait", 300)], options(dir.path));
    expect(result).toEqual({ ok: false, results: [expect.objectContaining({ name: "spawns", ok: false })] });
    expect(result.results[0]!.output).toContain("[timed out after 300 ms]");
    const child = Number(readFileSync(join(dir.path, "child.pid"), "utf8"));
    await until(() => isGone(child));
  });

  it("that passes leaves nothing running behind it", async () => {
    await using dir = createTempDir();
    expect(await runGates([gate(dir.path, "exit 0")], options(dir.path))).toMatchObject({ ok: true, results: [{ ok: true }] });
    const child = Number(readFileSync(join(dir.path, "child.pid"), "utf8"));
    await until(() => isGone(child));
  });

  it("that exits non-zero fails with its exit code as evidence", async () => {
    await using dir = createTempDir();
    const result = await runGates([gate(dir.path, "echo broken; exit 3")], options(dir.path));
    expect(result.results[0]).toMatchObject({ ok: false, output: "broken\n\n[exit 3]" });
  });
});

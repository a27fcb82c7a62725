import { execFile, spawn } from "node:child_process";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { emptyUsage } from "@bulkhead/core";
import { createTempDir } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { createBudget, restoreBudget } from "./create-budget.js";
import { createTracker, restoreTracker } from "./create-tracker.js";
import { createFileLedger, createMemoryLedger, parseLedger } from "./ledger.js";

const writer = new URL("../test/ledger-writer.ts", import.meta.url).pathname;
const run = promisify(execFile);
const node = (args: string[]) => run(process.execPath, ["--import", "tsx", writer, ...args], { cwd: join(import.meta.dirname, "..") });

describe("ledgers", () => {
  it("replay rebuilds budgets and reports exactly", async () => {
    await using dir = createTempDir();
    for (const make of [() => createMemoryLedger(), () => createFileLedger({ path: join(dir.path, "ledger.jsonl") })]) {
      const ledger = make();
      const session = createBudget({ id: "session", limits: { sessionTotal: 10_000 }, ledger });
      const task = createBudget({ id: "task", parent: session, limits: { generation: 2000 }, ledger });
      task.settle({
        lease: task.reserve({ amounts: { contextRead: 500, generation: 800 } }),
        spent: {
          ...emptyUsage(),
          inputTokens: 450,
          outputTokens: 700,
        },
      });
      task.charge({ spent: { toolCalls: 120 } });
      task.extend({ kind: "generation", amount: 1000, approvedBy: "ana" });
      const tracker = createTracker({ taskId: "rate-limit", ledger });
      const span = tracker.startSpan({ repo: "backend-api", operation: "edit", model: "claude-sonnet-4-5" });
      span.record({ ...emptyUsage(), inputTokens: 1000, uncachedInputTokens: 200, cacheReadTokens: 800, outputTokens: 300 });
      tracker
        .startSpan({ repo: "shared-types", operation: "tool:read" })
        .record({ ...emptyUsage(), inputTokens: 50, uncachedInputTokens: 50, outputTokens: 10 });
      await ledger.flush();

      const restoredSession = await restoreBudget({ id: "session", limits: { sessionTotal: 10_000 }, ledger });
      const restoredTask = await restoreBudget({ id: "task", parent: restoredSession, limits: { generation: 2000 }, ledger });
      expect(restoredTask.snapshot().used).toEqual(task.snapshot().used);
      expect(restoredTask.limit("generation")).toBe(3000);
      expect(restoredSession.snapshot().used).toEqual(session.snapshot().used);
      const restoredTracker = await restoreTracker({ taskId: "rate-limit", ledger });
      expect(restoredTracker.report()).toEqual(tracker.report());
      await ledger.close();
    }
  });

  it("ignores a torn last line and counts corrupt ones", () => {
    const line = (amount: number) => `${JSON.stringify({ type: "charge", at: 1, chain: ["b"], amounts: { generation: amount } })}\n`;
    const contents = parseLedger(`${line(1)}not json\n${line(2)}{"type":"nope","at":1}\n${line(3)}{"type":"charge","at":1,"cha`);
    expect(contents.events.map((event) => (event.type === "charge" ? event.amounts.generation : 0))).toEqual([1, 2, 3]);
    expect(contents).toMatchObject({ tornTail: true, corruptLines: 2 });
    // Lines that parse but could not be replayed are counted too, not half-applied.
    const malformed = [
      { type: "settle", at: 1, amounts: { generation: 1 } },
      { type: "charge", at: 1, chain: ["b"], amounts: { generation: "9" } },
      { type: "usage", at: 1, task: "t", repo: "r", operation: "o", usage: { inputTokens: -1, outputTokens: 0 } },
      { type: "extend", at: 1, budget: "b", kind: "generation", amount: 0, approvedBy: "x" },
    ];
    expect(parseLedger(malformed.map((event) => `${JSON.stringify(event)}\n`).join(""))).toEqual({
      events: [],
      tornTail: false,
      corruptLines: 4,
    });
  });

  it("flushes and closes at the end of an `await using` scope", async () => {
    await using dir = createTempDir();
    const path = join(dir.path, "ledger.jsonl");
    let kept: ReturnType<typeof createFileLedger> | undefined;
    {
      await using ledger = createFileLedger({ path });
      kept = ledger;
      ledger.append({ type: "charge", at: 1, chain: ["b"], amounts: { generation: 5 } });
    }
    // Disposed: the queued event is on disk (not waiting for the flush timer), and the ledger is closed.
    expect(parseLedger(readFileSync(path, "utf8")).events).toHaveLength(1);
    expect(() => kept.append({ type: "charge", at: 2, chain: ["b"], amounts: { generation: 1 } })).toThrow("is closed");
  });

  it("starts on a new line after a torn tail, so the next event is not lost", async () => {
    await using dir = createTempDir();
    const path = join(dir.path, "ledger.jsonl");
    const event = (amount: number) => ({ type: "charge" as const, at: 1, chain: ["b"], amounts: { generation: amount } });
    writeFileSync(path, `${JSON.stringify(event(1))}\n{"type":"charge","at":1,"cha`);
    const ledger = createFileLedger({ path });
    ledger.append(event(2));
    const contents = await ledger.read();
    expect(contents.events.map((entry) => (entry.type === "charge" ? entry.amounts.generation : 0))).toEqual([1, 2]);
    expect(contents).toMatchObject({ tornTail: false, corruptLines: 1 });
    const skipped: unknown[] = [];
    const restored = await restoreBudget({ id: "b", limits: {}, ledger, onSkipped: (found) => skipped.push(found) });
    expect(restored.used("generation")).toBe(3);
    expect(skipped).toEqual([{ corruptLines: 1, tornTail: false }]);
    await ledger.close();
  });

  it("is safe for two processes appending to one file", async () => {
    await using dir = createTempDir();
    const path = join(dir.path, "ledger.jsonl");
    await Promise.all([node([path, "one", "20", "50"]), node([path, "two", "20", "50"])]);
    const { events, corruptLines, tornTail } = parseLedger(readFileSync(path, "utf8"));
    expect({ corruptLines, tornTail, events: events.length }).toEqual({ corruptLines: 0, tornTail: false, events: 2000 });
    const one = await restoreBudget({ id: "one", limits: { generation: 1e12 }, ledger: createFileLedger({ path }) });
    const two = await restoreBudget({ id: "two", limits: { generation: 1e12 }, ledger: createFileLedger({ path }) });
    expect(one.used("generation")).toBe(two.used("generation"));
    expect(one.used("generation")).toBe(
      Array.from({ length: 20 * 50 }, (_, n) => 1 + ((Math.floor(n / 50) * 7 + (n % 50)) % 10)).reduce((a, b) => a + b, 0),
    );
  });

  it("a writer killed with SIGKILL mid-write replays to at least what it had made durable, exactly what is on disk", async () => {
    await using dir = createTempDir();
    const path = join(dir.path, "ledger.jsonl");
    const child = spawn(process.execPath, ["--import", "tsx", writer, path, "crash", "100000", "200"], {
      cwd: join(import.meta.dirname, ".."),
    });
    let durable = 0;
    await new Promise<void>((resolve) => {
      child.stdout.on("data", (chunk: Buffer) => {
        const lines = chunk.toString().trim().split("\n");
        durable = Number(lines.at(-1)!.split(" ")[1]);
        if (durable > 20_000) child.kill("SIGKILL");
      });
      child.on("exit", () => resolve());
    });
    expect(child.signalCode).toBe("SIGKILL");
    // Simulate the worst case too: a line cut in half by the crash.
    appendFileSync(path, '{"type":"settle","at":1,"chain":["crash"],"amounts":{"generation":5');
    const contents = parseLedger(readFileSync(path, "utf8"));
    expect(contents.tornTail).toBe(true);
    expect(contents.corruptLines).toBe(0);
    const onDisk = contents.events.reduce((sum, event) => sum + (event.type === "settle" ? (event.amounts.generation ?? 0) : 0), 0);
    const restored = await restoreBudget({ id: "crash", limits: { generation: 1e12 }, ledger: createFileLedger({ path }) });
    expect(restored.used("generation")).toBe(onDisk);
    expect(restored.used("generation")).toBeGreaterThanOrEqual(durable);
    const again = await restoreBudget({ id: "crash", limits: { generation: 1e12 }, ledger: createFileLedger({ path }) });
    expect(again.used("generation")).toBe(restored.used("generation"));
  });
});

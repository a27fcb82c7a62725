import { setTimeout as sleep } from "node:timers/promises";
import { createBudget, type Lease } from "@bulkhead/budget";
import { budgetVector, StoreUnavailableError } from "@bulkhead/core";
import { createWorkHook } from "@bulkhead/git-lead";
import { replayBudgetLedger, startTestPostgres, type TestPostgres } from "@bulkhead/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresBudgetStore } from "./postgres-budget-store.js";
import { createPostgresWorkHookStore } from "./postgres-work-hook-store.js";

let postgres: TestPostgres;
beforeAll(async () => {
  postgres = await startTestPostgres();
});
afterAll(() => postgres?.stop());

const unavailable = (error: unknown) => StoreUnavailableError.isInstance(error);
const TTL_MS = 2_000;

describe("the database goes down mid-run", () => {
  it("fails reservations closed with StoreUnavailableError, grants nothing extra, and resumes without a restart", async () => {
    const store = createPostgresBudgetStore({ connectionString: postgres.url, schema: "outage", connectTimeoutMs: 1_000 });
    const team = createBudget({ id: "team", limits: { generation: 40_000 }, store, leaseTtlMs: TTL_MS });
    const tasks = Array.from({ length: 4 }, (_, index) =>
      createBudget({ id: `task-${index}`, parent: team, limits: { generation: 12_000 }, store, leaseTtlMs: TTL_MS }),
    );
    for (const task of tasks) await task.refresh();
    let phase: "before" | "down" | "after" = "before";
    const errors: unknown[] = [];
    const counts = { before: 0, down: 0, after: 0, failedWhileDown: 0 };
    // Four workers reserve and settle; a settle that fails is retried with the same lease (its settlement id).
    const worker = async (task: (typeof tasks)[number]) => {
      while (counts.after < 200) {
        let lease: Lease | undefined;
        try {
          lease = await task.tryReserveAsync({ amounts: { generation: 50 } });
        } catch (error) {
          errors.push(error);
          if (phase === "down") counts.failedWhileDown++;
          await sleep(20);
          continue;
        }
        if (!lease) break;
        for (;;) {
          try {
            await task.settleAsync({ lease, spent: 40 });
            break;
          } catch (error) {
            errors.push(error);
            // A worker may meet the outage here, retrying its settle: that is a failure while down too
            // (counted only in reserve, a run where every worker was settling waited for ever).
            if (phase === "down") counts.failedWhileDown++;
            await sleep(20);
          }
        }
        counts[phase]++;
      }
    };
    const running = Promise.all(tasks.map(worker));
    while (counts.before < 100) await sleep(10);
    postgres.stopServer();
    phase = "down";
    while (counts.failedWhileDown < 20) await sleep(10);
    const grantedWhileDown = counts.down;
    postgres.start();
    phase = "after";
    await running;
    await store.sweep();

    expect(errors.length).toBeGreaterThan(0);
    // Every failure was the typed one: no raw driver error, no half-done call.
    expect(errors.filter((error) => !unavailable(error))).toEqual([]);
    // While the server was down nothing was granted (at most the calls already past their commit).
    expect(grantedWhileDown).toBeLessThanOrEqual(4);
    expect(counts.after).toBeGreaterThanOrEqual(200);

    await sleep(TTL_MS + 200);
    const levels = await store.levels(["team", ...tasks.map((task) => task.id)]);
    const totals = replayBudgetLedger(await store.ledger());
    for (const level of levels) {
      expect(level.used.generation).toBeLessThanOrEqual(level.limits.generation!);
      expect(level.reserved.generation, `${level.id} holds nothing after the TTL`).toBe(0);
      expect(totals.get(level.id) ?? budgetVector()).toEqual(level.used);
    }
    // Each settled lease was booked exactly once, also the ones retried across the outage.
    expect(levels[0]!.used.generation).toBe((counts.before + counts.down + counts.after) * 40);
    await store.close();
  }, 300_000);

  it("fails claims closed the same way, and serves them again once the database is back", async () => {
    const hook = createWorkHook({
      store: createPostgresWorkHookStore({ connectionString: postgres.url, schema: "outage_hook", connectTimeoutMs: 1_000 }),
    });
    await hook.add([{ id: "a" }, { id: "b" }]);
    const claim = await hook.claim({ taskId: "a", worker: "w1" });
    postgres.stopServer();
    try {
      await expect(hook.claim({ taskId: "b", worker: "w2" })).rejects.toSatisfy(unavailable);
      await expect(hook.complete({ claim })).rejects.toSatisfy(unavailable);
    } finally {
      postgres.start();
    }
    await hook.complete({ claim });
    expect((await hook.claimNext({ worker: "w2" }))?.taskId).toBe("b");
    await hook.close?.();
  }, 300_000);
});

import { setTimeout as sleep } from "node:timers/promises";
import { BUDGET_KINDS, budgetVector, BulkheadError, type BudgetKind, type BudgetStore } from "@bulkhead/core";
import { afterEach, describe, expect, it } from "vitest";

/** Sums the ledger's settlements and charges per level, as a replay would. */
export function replayBudgetLedger(events: Awaited<ReturnType<BudgetStore["ledger"]>>): Map<string, Record<BudgetKind, number>> {
  const totals = new Map<string, Record<BudgetKind, number>>();
  for (const event of events) {
    if (event.type === "extend") continue;
    for (const id of event.chain) {
      const total = totals.get(id) ?? budgetVector();
      for (const kind of BUDGET_KINDS) total[kind] += event.amounts[kind] ?? 0;
      totals.set(id, total);
    }
  }
  return totals;
}

/**
 * The conformance suite of {@link BudgetStore}: every implementation (memory, files, PostgreSQL)
 * runs it and must behave the same. `create` returns a new, empty store each time.
 */
export function describeBudgetStore(name: string, create: () => Promise<BudgetStore>): void {
  describe(`BudgetStore conformance: ${name}`, () => {
    const opened: BudgetStore[] = [];
    const open = async () => {
      const store = await create();
      opened.push(store);
      await store.define({ id: "team", limits: { sessionTotal: 1_000 } });
      await store.define({ id: "session", parent: "team", limits: { sessionTotal: 600, generation: 500 } });
      await store.define({ id: "task", parent: "session", limits: { generation: 300 } });
      return store;
    };
    const chain = ["task", "session", "team"];
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((store) => store.close()));
    });

    it("is AsyncDisposable: disposing closes it, and closing again is harmless", async () => {
      const store = await open();
      expect(typeof store[Symbol.asyncDispose]).toBe("function");
      await store[Symbol.asyncDispose]();
      await expect(store.close()).resolves.toBeUndefined();
    });

    it("defines levels once: a second define keeps the stored limits", async () => {
      const store = await open();
      const again = await store.define({ id: "team", limits: { sessionTotal: 5 } });
      expect(again.limits).toEqual({ sessionTotal: 1_000 });
      expect(again.used.sessionTotal).toBe(0);
      const [task] = await store.levels(["task"]);
      expect(task).toMatchObject({ id: "task", parent: "session", limits: { generation: 300 } });
    });

    it("holds a reservation at every level of the chain, and settles it into spend and the ledger", async () => {
      const store = await open();
      const outcome = await store.reserve({ chain, amounts: { generation: 200, sessionTotal: 200 }, ttlMs: 60_000 });
      expect(outcome.granted).toBe(true);
      if (!outcome.granted) return;
      expect(outcome.lease.chain).toEqual(chain);
      expect(outcome.levels.map((level) => level.reserved.sessionTotal)).toEqual([200, 200, 200]);
      const settled = await store.settle({ leaseId: outcome.lease.id, amounts: { generation: 150, sessionTotal: 150 } });
      expect(settled.status).toBe("applied");
      const levels = await store.levels(chain);
      expect(levels.map((level) => [level.used.generation, level.reserved.generation])).toEqual([
        [150, 0],
        [150, 0],
        [150, 0],
      ]);
      expect(levels[2]!.used.sessionTotal).toBe(150);
      const ledger = await store.ledger();
      expect(ledger).toHaveLength(1);
      expect(ledger[0]).toMatchObject({ type: "settle", chain, amounts: { generation: 150, sessionTotal: 150 }, lease: outcome.lease.id });
    });

    it("refuses all or nothing: a reservation over a parent's cap holds at no level", async () => {
      const store = await open();
      const refused = await store.reserve({ chain, amounts: { generation: 100, sessionTotal: 700 }, ttlMs: 60_000 });
      expect(refused.granted).toBe(false);
      if (refused.granted) return;
      expect(refused.refusal).toMatchObject({ budgetId: "session", kind: "sessionTotal", requested: 700, available: 600, limit: 600 });
      const levels = await store.levels(chain);
      expect(levels.every((level) => BUDGET_KINDS.every((kind) => level.reserved[kind] === 0))).toBe(true);
    });

    it("never grants past a cap under concurrent reservations", async () => {
      const store = await open();
      const outcomes = await Promise.all(
        Array.from({ length: 60 }, () => store.reserve({ chain, amounts: { generation: 10 }, ttlMs: 60_000 })),
      );
      expect(outcomes.filter((outcome) => outcome.granted)).toHaveLength(30);
      const [task] = await store.levels(["task"]);
      expect(task!.reserved.generation).toBe(300);
    });

    it("makes a retried settlement a no-op: the same settlement id is booked once", async () => {
      const store = await open();
      const outcome = await store.reserve({ chain, amounts: { generation: 50 }, ttlMs: 60_000 });
      if (!outcome.granted) throw new Error("expected a grant");
      expect((await store.settle({ leaseId: outcome.lease.id, amounts: { generation: 40 } })).status).toBe("applied");
      expect((await store.settle({ leaseId: outcome.lease.id, amounts: { generation: 40 } })).status).toBe("duplicate");
      expect((await store.charge({ chain, amounts: { generation: 5 }, settlementId: "charge-1" })).status).toBe("applied");
      expect((await store.charge({ chain, amounts: { generation: 5 }, settlementId: "charge-1" })).status).toBe("duplicate");
      const [task] = await store.levels(["task"]);
      expect(task!.used.generation).toBe(45);
      expect(await store.ledger()).toHaveLength(2);
    });

    it("releases a hold once, and refuses to settle a released lease", async () => {
      const store = await open();
      const outcome = await store.reserve({ chain, amounts: { generation: 100 }, ttlMs: 60_000 });
      if (!outcome.granted) throw new Error("expected a grant");
      expect(await store.release(outcome.lease.id)).toBe(true);
      expect(await store.release(outcome.lease.id)).toBe(false);
      expect((await store.settle({ leaseId: outcome.lease.id, amounts: { generation: 1 } })).status).toBe("unknown-lease");
      const [task] = await store.levels(["task"]);
      expect([task!.used.generation, task!.reserved.generation]).toEqual([0, 0]);
    });

    it("gives an expired lease's hold back, and still books spend settled on it later", async () => {
      const store = await open();
      const outcome = await store.reserve({ chain, amounts: { generation: 300 }, ttlMs: 150 });
      if (!outcome.granted) throw new Error("expected a grant");
      expect((await store.reserve({ chain, amounts: { generation: 1 }, ttlMs: 60_000 })).granted).toBe(false);
      await sleep(300);
      // The expired hold goes back: the cap is free again.
      const next = await store.reserve({ chain, amounts: { generation: 100 }, ttlMs: 60_000 });
      expect(next.granted).toBe(true);
      expect((await store.settle({ leaseId: outcome.lease.id, amounts: { generation: 20 } })).status).toBe("applied");
      const [task] = await store.levels(["task"]);
      expect([task!.used.generation, task!.reserved.generation]).toEqual([20, 100]);
    });

    it("refuses everything once a late kind (the session total) is spent", async () => {
      const store = await open();
      await store.charge({ chain: ["session", "team"], amounts: { sessionTotal: 600 } });
      const refused = await store.reserve({ chain, amounts: { generation: 1 }, ttlMs: 60_000 });
      expect(refused.granted).toBe(false);
      if (!refused.granted) expect(refused.refusal).toMatchObject({ budgetId: "session", kind: "sessionTotal" });
    });

    it("extends a limit and records who approved it", async () => {
      const store = await open();
      const extended = await store.extend({ budgetId: "task", kind: "generation", amount: 200, approvedBy: "lead", reason: "tests" });
      expect(extended.limits.generation).toBe(500);
      expect((await store.reserve({ chain, amounts: { generation: 450 }, ttlMs: 60_000 })).granted).toBe(true);
      expect(await store.ledger()).toEqual([
        expect.objectContaining({ type: "extend", budget: "task", kind: "generation", amount: 200, approvedBy: "lead", reason: "tests" }),
      ]);
      await expect(store.extend({ budgetId: "task", kind: "usd", amount: 1, approvedBy: "lead" })).rejects.toSatisfy((error) =>
        BulkheadError.isInstance(error),
      );
    });

    it("names an unknown level instead of granting on it", async () => {
      const store = await open();
      await expect(store.reserve({ chain: ["nobody"], amounts: { generation: 1 }, ttlMs: 1_000 })).rejects.toThrow(
        /no budget level "nobody"/,
      );
    });

    it("keeps a ledger that replays to exactly the stored spend", async () => {
      const store = await open();
      for (let index = 0; index < 20; index++) {
        const outcome = await store.reserve({ chain, amounts: { generation: 10, sessionTotal: 10 }, ttlMs: 60_000 });
        if (outcome.granted) await store.settle({ leaseId: outcome.lease.id, amounts: { generation: index % 7, sessionTotal: index % 7 } });
      }
      await store.charge({ chain: ["session", "team"], amounts: { sessionTotal: 3 } });
      const totals = replayBudgetLedger(await store.ledger());
      for (const level of await store.levels(chain)) expect(totals.get(level.id) ?? budgetVector()).toEqual(level.used);
    });
  });
}

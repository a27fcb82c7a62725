import { setTimeout as sleep } from "node:timers/promises";
import { startTestPostgres, type TestPostgres } from "@bulkhead/test-utils";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresBudgetStore } from "./postgres-budget-store.js";

let postgres: TestPostgres;
beforeAll(async () => {
  postgres = await startTestPostgres();
});
afterAll(() => postgres?.stop());

describe("expired leases on PostgreSQL", () => {
  it("a dead host's holds go back by the live hosts' background sweep, and expired leases are pruned after their retention", async () => {
    const schema = "pruning";
    // The host that dies: it holds two reservations and is gone (its pool closed, no sweeper left).
    const dead = createPostgresBudgetStore({ connectionString: postgres.url, schema, sweepIntervalMs: 0 });
    await dead.define({ id: "team", limits: { generation: 1_000 } });
    const late = await dead.reserve({ chain: ["team"], amounts: { generation: 300 }, ttlMs: 200 });
    const pruned = await dead.reserve({ chain: ["team"], amounts: { generation: 400 }, ttlMs: 200 });
    if (!late.granted || !pruned.granted) throw new Error("expected both reservations");
    await dead.close();

    // A live host that only keeps its store open: no reservation of its own is refused, nobody reads the levels.
    const live = createPostgresBudgetStore({ connectionString: postgres.url, schema, sweepIntervalMs: 50, expiredLeaseRetentionMs: 1_500 });
    const observer = new pg.Client({ connectionString: postgres.url });
    await observer.connect();
    const read = async () => {
      const level = await observer.query<{ reserved: number }>(
        `SELECT reserved_generation AS reserved FROM ${schema}.budget_levels WHERE id = 'team'`,
      );
      const leases = await observer.query<{ id: string; state: string }>(`SELECT id, state FROM ${schema}.budget_leases ORDER BY id`);
      return { reserved: Number(level.rows[0]!.reserved), leases: leases.rows };
    };
    try {
      expect((await read()).reserved).toBe(700);
      // Returned without any call on a store: the background sweep of the live host.
      let state = await read();
      while (state.reserved !== 0) {
        await sleep(20);
        state = await read();
      }
      expect(state.leases.map((lease) => lease.state)).toEqual(["expired", "expired"]);

      // Within the retention, a late settle of an expired lease still books its spend.
      expect((await live.settle({ leaseId: late.lease.id, amounts: { generation: 250 } })).status).toBe("applied");
      // After the retention, the expired lease row is deleted: the table does not grow for ever.
      while ((await read()).leases.length > 0) await sleep(50);
      expect(await live.settle({ leaseId: pruned.lease.id, amounts: { generation: 400 } })).toEqual({
        status: "unknown-lease",
        levels: [],
      });
      const [team] = await live.levels(["team"]);
      expect(team).toMatchObject({ used: { generation: 250 }, reserved: { generation: 0 } });
      expect((await live.ledger()).map((event) => event.type)).toEqual(["settle"]);
    } finally {
      await observer.end();
      await live.close();
    }
  });

  it("validates the sweep options", () => {
    expect(() => createPostgresBudgetStore({ connectionString: postgres.url, sweepIntervalMs: -1 })).toThrow(/sweepIntervalMs/);
    expect(() => createPostgresBudgetStore({ connectionString: postgres.url, expiredLeaseRetentionMs: 0.5 })).toThrow(
      /expiredLeaseRetentionMs/,
    );
  });
});

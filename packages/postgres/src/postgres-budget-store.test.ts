import { describeBudgetStore, startTestPostgres, type TestPostgres } from "@bulkhead/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresBudgetStore } from "./postgres-budget-store.js";

let postgres: TestPostgres;
beforeAll(async () => {
  postgres = await startTestPostgres();
});
afterAll(() => postgres?.stop());

let count = 0;
describeBudgetStore("postgres", async () => createPostgresBudgetStore({ connectionString: postgres.url, schema: `budget_${++count}` }));

describe("createPostgresBudgetStore: its own checks", () => {
  it("refuses a level without an id, an unknown kind, and amounts that are not non-negative numbers", async () => {
    const store = createPostgresBudgetStore({ connectionString: postgres.url, schema: `budget_${++count}` });
    try {
      for (const id of ["", 42 as unknown as string])
        await expect(store.define({ id, limits: {} })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      await expect(store.define({ id: "team", limits: { generation: -1 } })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      for (const bad of [Number.NaN, Number.POSITIVE_INFINITY])
        await expect(store.define({ id: "team", limits: { generation: bad } })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      await expect(store.define({ id: "team", limits: { tokens: 1 } as never })).rejects.toThrow(/unknown budget kind "tokens"/);
      for (const chain of [[], ["team", ""]])
        await expect(store.reserve({ chain, amounts: { generation: 1 }, ttlMs: 1_000 })).rejects.toThrow(/expected the budget's id/);
      expect((await store.define({ id: "team", limits: { generation: 0 } })).limits).toEqual({ generation: 0 });
    } finally {
      await store.close();
    }
  });
});

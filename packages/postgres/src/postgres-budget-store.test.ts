import { describeBudgetStore, startTestPostgres, type TestPostgres } from "@bulkhead/test-utils";
import { afterAll, beforeAll } from "vitest";
import { createPostgresBudgetStore } from "./postgres-budget-store.js";

let postgres: TestPostgres;
beforeAll(async () => {
  postgres = await startTestPostgres();
});
afterAll(() => postgres?.stop());

let count = 0;
describeBudgetStore("postgres", async () => createPostgresBudgetStore({ connectionString: postgres.url, schema: `budget_${++count}` }));

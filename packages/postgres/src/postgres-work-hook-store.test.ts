import { createWorkHook } from "@bulkhead/git-lead";
import { describeWorkHook, startTestPostgres, type TestPostgres } from "@bulkhead/test-utils";
import { afterAll, beforeAll } from "vitest";
import { createPostgresWorkHookStore } from "./postgres-work-hook-store.js";

let postgres: TestPostgres;
beforeAll(async () => {
  postgres = await startTestPostgres();
});
afterAll(() => postgres?.stop());

let count = 0;
describeWorkHook("postgres", async () =>
  createWorkHook({ store: createPostgresWorkHookStore({ connectionString: postgres.url, schema: `hook_${++count}` }) }),
);

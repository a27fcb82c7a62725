import { describeSessionRegistry, startTestPostgres, type TestPostgres } from "@bulkhead/test-utils";
import { afterAll, beforeAll } from "vitest";
import { createPostgresSessionRegistry } from "./postgres-session-registry.js";

let postgres: TestPostgres;
beforeAll(async () => {
  postgres = await startTestPostgres();
});
afterAll(() => postgres?.stop());

let count = 0;
describeSessionRegistry("postgres", async () =>
  createPostgresSessionRegistry({ connectionString: postgres.url, schema: `sessions_${++count}` }),
);

import { describeProposalStore, startTestPostgres, type TestPostgres } from "@bulkhead/test-utils";
import { afterAll, beforeAll } from "vitest";
import { createPostgresProposalStore } from "./postgres-proposal-store.js";

let postgres: TestPostgres;
beforeAll(async () => {
  postgres = await startTestPostgres();
});
afterAll(() => postgres?.stop());

let count = 0;
describeProposalStore("postgres", async () =>
  createPostgresProposalStore({ connectionString: postgres.url, schema: `proposals_${++count}` }),
);

import { describeMemoryStore, sampleMemoryEntry, startTestPostgres, type TestPostgres } from "@bulkhead/test-utils";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresMemoryStore } from "./postgres-memory-store.js";

let postgres: TestPostgres;
beforeAll(async () => {
  postgres = await startTestPostgres();
});
afterAll(() => postgres?.stop());

let count = 0;
describeMemoryStore("postgres", async () => {
  const store = createPostgresMemoryStore({ connectionString: postgres.url, schema: `memory_${++count}` });
  return { store, [Symbol.asyncDispose]: () => store.close() };
});

describe("createPostgresMemoryStore", () => {
  it("reports a row that does not parse by its source and line, skips it in list, and refuses it in get", async () => {
    const schema = `memory_bad_${++count}`;
    await using context = {
      store: createPostgresMemoryStore({ connectionString: postgres.url, schema }),
      async [Symbol.asyncDispose]() {},
    };
    const { store } = context;
    await store.create(sampleMemoryEntry("m-good"));
    await store.create(sampleMemoryEntry("m-edited"));
    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    try {
      // Edited by hand in the database, as a file can be in a checkout.
      await client.query(
        `UPDATE ${schema}.memory_entries SET text = replace(text, 'kind: decision', 'kind: rumour') WHERE id = 'm-edited'`,
      );
    } finally {
      await client.end();
    }
    const listing = await store.list();
    expect(listing.entries.map((entry) => entry.id)).toEqual(["m-good"]);
    expect(listing.problems).toEqual([
      expect.objectContaining({ source: `postgres:${schema}.memory_entries/m-edited`, line: 3, path: "kind" }),
    ]);
    await expect(store.get("m-edited")).rejects.toMatchObject({ code: "INVALID_MEMORY_ENTRY" });
    // An update never builds on a row it cannot read.
    await expect(store.update("m-edited", (current) => ({ ...current, title: "x" }))).rejects.toMatchObject({
      code: "INVALID_MEMORY_ENTRY",
    });
    await store.close();
  });

  it("fails closed when the database is unreachable", async () => {
    const store = createPostgresMemoryStore({
      connectionString: `postgresql://nobody@/none?host=${postgres.socketDir}-missing`,
      connectTimeoutMs: 500,
    });
    await expect(store.list()).rejects.toMatchObject({ code: "STORE_UNAVAILABLE" });
    await store.close();
  });
});

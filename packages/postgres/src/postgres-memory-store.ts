import { InvalidArgumentError, throwIfAborted } from "@bulkhead/core";
import {
  checkMemoryEntry,
  InvalidMemoryEntryError,
  MEMORY_ID_PATTERN,
  MemoryEntryNotFoundError,
  parseMemoryEntry,
  renderMemoryEntry,
  type MemoryEntry,
  type MemoryProblem,
  type MemoryStore,
  type MemoryUsage,
} from "@bulkhead/memory";
import { connectPostgres, type PostgresStoreOptions } from "./postgres-connection.js";

// Each row keeps the entry's file text (front matter and body): the same stable, reviewable
// format as the file store, parsed back with every limit on read, so a row edited by hand is
// reported by line like a file, never used unchecked.
const ddl = (schema: string) => `
CREATE TABLE IF NOT EXISTS ${schema}.memory_entries (
  id text PRIMARY KEY,
  status text NOT NULL,
  updated_at text NOT NULL,
  text text NOT NULL
);
CREATE TABLE IF NOT EXISTS ${schema}.memory_usage (
  id text PRIMARY KEY,
  uses integer NOT NULL,
  last_used_at text NOT NULL
);`;

function checkId(id: string): string {
  if (typeof id !== "string" || !MEMORY_ID_PATTERN.test(id))
    throw new InvalidArgumentError("id", `"${String(id)}" is not a memory entry id`);
  return id;
}

/**
 * Project memory on PostgreSQL: the {@link MemoryStore} of a team whose hosts share one
 * database. One row per entry holding its file text (the format the file store writes), use
 * counts in a table beside it; `update` is a compare-and-set with the row locked; `create` of an
 * id that exists is a no-op. A row that does not parse is reported in `list().problems` with its
 * line (source `postgres:<schema>.memory_entries/<id>`) and skipped.
 *
 * @example
 * const store = createPostgresMemoryStore({ connectionString: process.env.BULKHEAD_STORE });
 * const { entries, usage } = await store.list();
 */
export function createPostgresMemoryStore(options: PostgresStoreOptions): MemoryStore & { close(): Promise<void> } {
  const db = connectPostgres("postgres memory", options, ddl, ["memory_entries", "memory_usage"]);
  const entries = `${db.schema}.memory_entries`;
  const usageTable = `${db.schema}.memory_usage`;
  const sourceOf = (id: string) => `postgres:${db.schema.replace(/"/g, "")}.memory_entries/${id}`;
  /** Parses a row; its id must be the row's. */
  const parseRow = (row: { id: string; text: string }): MemoryEntry => {
    const entry = parseMemoryEntry(row.text, { source: sourceOf(row.id) });
    if (entry.id !== row.id)
      throw new InvalidMemoryEntryError(sourceOf(row.id), [
        { source: sourceOf(row.id), line: 2, column: 1, path: "id", message: `is "${entry.id}", but the row is "${row.id}": fix the id` },
      ]);
    return entry;
  };

  return {
    async list({ abortSignal } = {}) {
      throwIfAborted(abortSignal, "list");
      const { rows } = await db.query<{ id: string; text: string }>(
        "list memory entries",
        `SELECT id, text FROM ${entries} ORDER BY id COLLATE "C"`,
      );
      throwIfAborted(abortSignal, "list");
      const listed: MemoryEntry[] = [];
      const problems: MemoryProblem[] = [];
      for (const row of rows) {
        try {
          listed.push(parseRow(row));
        } catch (error) {
          if (!InvalidMemoryEntryError.isInstance(error)) throw error;
          problems.push(...error.problems);
        }
      }
      const used = await db.query<{ id: string; uses: number; last_used_at: string }>(
        "read memory use counts",
        `SELECT id, uses, last_used_at FROM ${usageTable} ORDER BY id COLLATE "C"`,
      );
      const usage: Record<string, MemoryUsage> = {};
      for (const row of used.rows) usage[row.id] = { uses: row.uses, lastUsedAt: row.last_used_at };
      return { entries: listed, problems, usage };
    },
    async get(id) {
      checkId(id);
      const { rows } = await db.query<{ id: string; text: string }>(
        "read a memory entry",
        `SELECT id, text FROM ${entries} WHERE id = $1`,
        [id],
      );
      return rows[0] ? parseRow(rows[0]) : undefined;
    },
    async create(entry) {
      const valid = checkMemoryEntry(entry, "entry");
      const { rowCount } = await db.query(
        "create a memory entry",
        `INSERT INTO ${entries} (id, status, updated_at, text) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING`,
        [valid.id, valid.status, valid.updatedAt, renderMemoryEntry(valid)],
      );
      return rowCount === 1 ? "created" : "exists";
    },
    async update(id, change) {
      checkId(id);
      const next = await db.transaction("update a memory entry", async (client) => {
        const { rows } = await client.query<{ id: string; text: string }>(`SELECT id, text FROM ${entries} WHERE id = $1 FOR UPDATE`, [id]);
        if (!rows[0]) throw new MemoryEntryNotFoundError(id);
        const updated = checkMemoryEntry(change(parseRow(rows[0])), "change");
        if (updated.id !== id) throw new InvalidArgumentError("change", `an update may not change the id ("${id}" → "${updated.id}")`);
        await client.query(`UPDATE ${entries} SET status = $2, updated_at = $3, text = $4 WHERE id = $1`, [
          id,
          updated.status,
          updated.updatedAt,
          renderMemoryEntry(updated),
        ]);
        return updated;
      });
      return next!;
    },
    async recordUse(ids, at) {
      for (const id of ids) checkId(id);
      if (typeof at !== "string" || Number.isNaN(Date.parse(at)))
        throw new InvalidArgumentError("at", `expected an ISO time, got ${String(at)}`);
      if (ids.length === 0) return;
      // One statement: an id given twice counts twice, as in the file store.
      await db.query(
        "count memory uses",
        `INSERT INTO ${usageTable} (id, uses, last_used_at)
           SELECT id, count(*)::integer, $2 FROM unnest($1::text[]) AS given(id) GROUP BY id
         ON CONFLICT (id) DO UPDATE SET uses = ${usageTable}.uses + excluded.uses, last_used_at = excluded.last_used_at`,
        [[...ids], at],
      );
    },
    close: () => db.close(),
  };
}

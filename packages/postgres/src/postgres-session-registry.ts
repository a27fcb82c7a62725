import { checkSessionRecord, InvalidArgumentError, sessionOwnerError, type SessionRecord, type SessionRegistry } from "@bulkhead/core";
import { connectPostgres, type PostgresStoreOptions } from "./postgres-connection.js";

const NOW_MS = "(extract(epoch from clock_timestamp()) * 1000)::bigint";
const ddl = (schema: string) => `
CREATE TABLE IF NOT EXISTS ${schema}.sessions (
  id text PRIMARY KEY,
  host text NOT NULL,
  engine text NOT NULL,
  project text,
  state text NOT NULL,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL
);`;

interface Row {
  id: string;
  host: string;
  engine: string;
  project: string | null;
  state: SessionRecord["state"];
  created_at: string;
  updated_at: string;
}
const toRecord = (row: Row): SessionRecord => ({
  id: row.id,
  host: row.host,
  engine: row.engine,
  ...(row.project === null ? {} : { project: row.project }),
  state: row.state,
  createdAt: Number(row.created_at),
  updatedAt: Number(row.updated_at),
});

/**
 * A {@link SessionRegistry} on PostgreSQL: which host and engine hold each session of the team,
 * so a listing on any host shows every session and its owner. Registering an id another host
 * holds is refused in the same statement that inserts it; only the owning host changes a record.
 *
 * @example
 * const registry = createPostgresSessionRegistry({ connectionString: process.env.BULKHEAD_STORE });
 * for (const session of await registry.list()) console.log(session.id, session.host, session.state);
 */
export function createPostgresSessionRegistry(options: PostgresStoreOptions): SessionRegistry & { close(): Promise<void> } {
  const db = connectPostgres("postgres session-registry", options, ddl, ["sessions"]);
  const table = `${db.schema}.sessions`;
  const owned = async (id: string, host: string, found: Row | undefined) => {
    if (found) return toRecord(found);
    const { rows } = await db.query<Row>("read a session", `SELECT * FROM ${table} WHERE id = $1`, [id]);
    if (!rows[0]) throw new InvalidArgumentError("id", `no session "${id}" in the registry`);
    throw sessionOwnerError(id, rows[0].host, host);
  };
  return {
    async register(record) {
      checkSessionRecord(record);
      const { rows } = await db.query<Row>(
        "register a session",
        `INSERT INTO ${table} (id, host, engine, project, state, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, ${NOW_MS}, ${NOW_MS})
         ON CONFLICT (id) DO UPDATE SET host = excluded.host, engine = excluded.engine, project = excluded.project, state = excluded.state,
           created_at = excluded.created_at, updated_at = excluded.updated_at
         WHERE ${table}.state = 'removed' RETURNING *`,
        [record.id, record.host, record.engine, record.project ?? null, record.state],
      );
      if (rows[0]) return toRecord(rows[0]);
      const held = await this.get(record.id);
      throw new InvalidArgumentError("record.id", `session "${record.id}" is already registered by host ${held?.host ?? "another host"}`);
    },
    async update(id, { host, state }) {
      if (!["running", "stopped", "removed"].includes(state))
        throw new InvalidArgumentError("state", `expected running, stopped or removed, got ${JSON.stringify(state)}`);
      const { rows } = await db.query<Row>(
        "update a session",
        `UPDATE ${table} SET state = $3, updated_at = ${NOW_MS} WHERE id = $1 AND host = $2 RETURNING *`,
        [id, host, state],
      );
      return owned(id, host, rows[0]);
    },
    async get(id) {
      const { rows } = await db.query<Row>("read a session", `SELECT * FROM ${table} WHERE id = $1`, [id]);
      return rows[0] ? toRecord(rows[0]) : undefined;
    },
    async list({ host } = {}) {
      const { rows } = await db.query<Row>(
        "list sessions",
        `SELECT * FROM ${table} WHERE $1::text IS NULL OR host = $1 ORDER BY id COLLATE "C"`,
        [host ?? null],
      );
      return rows.map(toRecord);
    },
    async remove(id, { host }) {
      const { rowCount } = await db.query("remove a session", `DELETE FROM ${table} WHERE id = $1 AND host = $2`, [id, host]);
      if (rowCount === 0 && (await this.get(id))) await owned(id, host, undefined);
    },
    close: () => db.close(),
  };
}

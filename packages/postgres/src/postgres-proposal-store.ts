import { InvalidArgumentError, proposalSchema, StoreUnavailableError, type Proposal, type ProposalStore } from "@bulkhead/core";
import { connectPostgres, isUnavailable, type PostgresStoreOptions } from "./postgres-connection.js";

const ddl = (schema: string) => `
CREATE TABLE IF NOT EXISTS ${schema}.proposals (
  id text PRIMARY KEY,
  status text NOT NULL,
  created_at text NOT NULL,
  record jsonb NOT NULL
);`;

const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * A guard's {@link ProposalStore} on PostgreSQL: the held cross-repo changes of a team, seen and
 * decided from any host. `update` is a compare-and-set in one transaction (the row locked, plus a
 * per-id advisory lock so two first writers of one id cannot both insert); `exclusive` holds a
 * session advisory lock, which PostgreSQL frees by itself if the holder's connection dies.
 *
 * @example
 * const guard = createMultiRepoGuard({ primaryRepo: "backend-api", store: createPostgresProposalStore({ connectionString: process.env.BULKHEAD_STORE }) });
 */
export function createPostgresProposalStore(options: PostgresStoreOptions): ProposalStore & { close(): Promise<void> } {
  const db = connectPostgres("postgres proposal", options, ddl, ["proposals"]);
  const table = `${db.schema}.proposals`;
  const check = (id: string) => {
    if (typeof id !== "string" || !ID_PATTERN.test(id)) throw new InvalidArgumentError("id", `"${id}" is not a proposal id`);
  };
  const upsert = `INSERT INTO ${table} (id, status, created_at, record) VALUES ($1, $2, $3, $4::jsonb)
    ON CONFLICT (id) DO UPDATE SET status = excluded.status, created_at = excluded.created_at, record = excluded.record`;
  const values = (proposal: Proposal) => [proposal.id, proposal.status, proposal.createdAt, JSON.stringify(proposal)];
  const lockKey = `${db.schema}.proposals`;

  return {
    async create(proposal) {
      const parsed = proposalSchema.parse(proposal);
      check(parsed.id);
      await db.query("create a proposal", upsert, values(parsed));
    },
    async get(id) {
      check(id);
      const { rows } = await db.query<{ record: unknown }>("read a proposal", `SELECT record FROM ${table} WHERE id = $1`, [id]);
      return rows[0] ? proposalSchema.parse(rows[0].record) : undefined;
    },
    async list({ status } = {}) {
      const { rows } = await db.query<{ record: unknown }>(
        "list proposals",
        `SELECT record FROM ${table} WHERE $1::text IS NULL OR status = $1 ORDER BY created_at COLLATE "C", id COLLATE "C"`,
        [status ?? null],
      );
      return rows.map((row) => proposalSchema.parse(row.record));
    },
    async update(id, change) {
      check(id);
      const next = await db.transaction("update a proposal", async (client) => {
        await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`${lockKey}:${id}`]);
        const { rows } = await client.query<{ record: unknown }>(`SELECT record FROM ${table} WHERE id = $1 FOR UPDATE`, [id]);
        const updated = proposalSchema.parse(change(rows[0] ? proposalSchema.parse(rows[0].record) : undefined));
        await client.query(upsert, values(updated));
        return updated;
      });
      return next!;
    },
    async exclusive(work) {
      await db.ready();
      let client;
      try {
        client = await db.pool.connect();
        await client.query("SELECT pg_advisory_lock(hashtext($1))", [lockKey]);
      } catch (error) {
        client?.release(true);
        throw isUnavailable(error) ? new StoreUnavailableError("postgres proposal", "take the store's lock", error) : error;
      }
      const onError = () => undefined;
      client.on("error", onError);
      try {
        return await work();
      } finally {
        const unlocked = await client.query("SELECT pg_advisory_unlock(hashtext($1))", [lockKey]).then(
          () => true,
          () => false,
        );
        client.off("error", onError);
        // A connection that could not unlock is dropped, which frees the lock on the server.
        client.release(unlocked ? undefined : true);
      }
    },
    close: () => db.close(),
  };
}

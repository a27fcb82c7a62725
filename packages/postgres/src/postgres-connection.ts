import { InvalidArgumentError, StoreUnavailableError } from "@bulkhead/core";
import pg from "pg";

/** How a PostgreSQL store reaches its database. */
export interface PostgresStoreOptions {
  /** `postgres://user@host/db` (or `?host=/socket/dir`). The store opens and closes its own pool. */
  connectionString?: string;
  /** A pool you own: the store uses it and leaves it open on `close()`. */
  pool?: pg.Pool;
  /** The schema the store's tables live in; created when missing. @default "bulkhead" */
  schema?: string;
  /** Most connections of a pool the store opens. @default 10 */
  maxConnections?: number;
  /** How long to wait for a connection before failing closed with `StoreUnavailableError`. @default 5000 */
  connectTimeoutMs?: number;
}

const SCHEMA = /^[a-z_][a-z0-9_]{0,62}$/;

/** Node and PostgreSQL errors that mean "the database is not reachable", not "the statement is wrong". */
const UNREACHABLE = new Set(["ECONNREFUSED", "ENOENT", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN"]);

export function isUnavailable(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code === "string" && (UNREACHABLE.has(code) || code.startsWith("08") || /^57P0[1-3]$/.test(code))) return true;
  return (
    typeof message === "string" &&
    /Connection terminated|connection error|timeout exceeded when trying to connect|not queryable/i.test(message)
  );
}

/** Deadlock or serialization failure: PostgreSQL rolled the transaction back, so running it again is safe. */
const isRetryable = (error: unknown) => ["40P01", "40001"].includes((error as { code?: string } | null)?.code ?? "");

/** What a transaction's work returns to roll back instead of committing. */
export const ROLLBACK: unique symbol = Symbol("rollback");

/** One store's access to its database: a pool, its schema, and transactions that fail closed. */
export interface PostgresConnection {
  readonly pool: pg.Pool;
  /** The quoted schema, for table names: `${schema}.budget_levels`. */
  readonly schema: string;
  query<TRow extends pg.QueryResultRow = pg.QueryResultRow>(
    operation: string,
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<TRow>>;
  /** Runs `work` in one transaction (retried on deadlock); returning {@link ROLLBACK} rolls it back and yields undefined. */
  transaction<TResult>(
    operation: string,
    work: (client: pg.PoolClient) => Promise<TResult | typeof ROLLBACK>,
  ): Promise<TResult | undefined>;
  /** Runs the schema's DDL once per connection, under an advisory lock so hosts starting together do not race. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens a store's connection. `ddl` creates its tables (idempotent); `relations` names every
 * table and index it creates, so a database that has them all is never sent DDL again: even an
 * `IF NOT EXISTS` index takes a table lock that queues behind (and in front of) running writers.
 */
export function connectPostgres(
  store: string,
  options: PostgresStoreOptions,
  ddl: (schema: string) => string,
  relations: readonly string[],
): PostgresConnection {
  if (typeof options !== "object" || options === null)
    throw new InvalidArgumentError("options", "expected { connectionString } or { pool }");
  const { connectionString, pool: given, schema = "bulkhead", maxConnections = 10, connectTimeoutMs = 5_000 } = options;
  if (!SCHEMA.test(schema))
    throw new InvalidArgumentError("options.schema", `expected a lower-case SQL identifier, got ${JSON.stringify(schema)}`);
  if (given === undefined && (typeof connectionString !== "string" || connectionString === ""))
    throw new InvalidArgumentError("options.connectionString", "expected a postgres:// connection string, or pass { pool }");
  if (!(Number.isInteger(maxConnections) && maxConnections > 0))
    throw new InvalidArgumentError("options.maxConnections", `expected a positive whole number, got ${maxConnections}`);
  const pool = given ?? new pg.Pool({ connectionString, max: maxConnections, connectionTimeoutMillis: connectTimeoutMs });
  // An idle connection the server dropped reports here; the next query reconnects, so it is not fatal.
  if (!given) pool.on("error", () => undefined);
  const quoted = `"${schema}"`;
  const unavailable = (operation: string, error: unknown) =>
    isUnavailable(error) ? new StoreUnavailableError(store, operation, error) : error;

  let migrated: Promise<void> | undefined;
  const ready = (): Promise<void> => {
    migrated ??= (async () => {
      const names = relations.map((name) => `${quoted}.${name}`);
      const exists = async (client: pg.PoolClient | pg.Pool) =>
        Number(
          (
            await client.query<{ found: string }>(
              "SELECT count(*) AS found FROM unnest($1::text[]) AS r WHERE to_regclass(r) IS NOT NULL",
              [names],
            )
          ).rows[0]!.found,
        ) === names.length;
      if (await exists(pool)) return;
      const client = await pool.connect();
      const onError = () => undefined;
      client.on("error", onError);
      try {
        await client.query("BEGIN");
        await client.query("SELECT pg_advisory_xact_lock(hashtext('bulkhead-schema'))");
        if (await exists(client)) {
          await client.query("COMMIT");
          return;
        }
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoted}`);
        await client.query(ddl(quoted));
        await client.query("COMMIT");
      } catch (error) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw error;
      } finally {
        client.off("error", onError);
        client.release();
      }
    })().catch((error: unknown) => {
      migrated = undefined; // a database that was down at start is tried again on the next call
      throw unavailable("create its tables", error);
    });
    return migrated;
  };

  let closed = false;
  return {
    pool,
    schema: quoted,
    async query(operation, text, values) {
      await ready();
      try {
        return await pool.query(text, values);
      } catch (error) {
        throw unavailable(operation, error);
      }
    },
    async transaction(operation, work) {
      await ready();
      for (let attempt = 1; ; attempt++) {
        let client: pg.PoolClient;
        try {
          client = await pool.connect();
        } catch (error) {
          throw unavailable(operation, error);
        }
        let broken = false;
        // The server may drop a connection we hold between statements (a shutdown): the next
        // statement fails and is reported; the client's own error event must not crash the process.
        const onError = () => (broken = true);
        client.on("error", onError);
        try {
          await client.query("BEGIN");
          const result = await work(client);
          if (result === ROLLBACK) {
            await client.query("ROLLBACK");
            return undefined;
          }
          await client.query("COMMIT");
          return result;
        } catch (error) {
          broken = isUnavailable(error);
          if (!broken) await client.query("ROLLBACK").catch(() => (broken = true));
          if (isRetryable(error) && attempt < 8) continue;
          throw unavailable(operation, error);
        } finally {
          // A connection that broke mid-transaction is discarded, never handed to the next caller.
          client.off("error", onError);
          client.release(broken ? true : undefined);
        }
      }
    },
    ready,
    async close() {
      if (closed) return;
      closed = true;
      if (!given) await pool.end();
    },
  };
}

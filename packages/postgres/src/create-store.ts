import { InvalidArgumentError, type BudgetStore, type ProposalStore, type SessionRegistry, type WorkHookStore } from "@bulkhead/core";
import pg from "pg";
import { createPostgresBudgetStore } from "./postgres-budget-store.js";
import type { PostgresStoreOptions } from "./postgres-connection.js";
import { createPostgresProposalStore } from "./postgres-proposal-store.js";
import { createPostgresSessionRegistry } from "./postgres-session-registry.js";
import { createPostgresWorkHookStore } from "./postgres-work-hook-store.js";

/** Every shared store of one database, on one pool. */
export interface PostgresStores {
  /** For `createBudget({ store })`. */
  readonly budgets: BudgetStore;
  /** For `createWorkHook({ store })` of @bulkhead/git-lead. */
  readonly workHook: WorkHookStore;
  /** For `createMultiRepoGuard({ store })`. */
  readonly proposals: ProposalStore;
  /** Which host and engine hold each session. */
  readonly sessions: SessionRegistry;
  /** Closes the pool. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Opens every shared store on one PostgreSQL database: the one setting that moves a team from
 * one host to many. The connection string is `url`, or `BULKHEAD_STORE` from the environment.
 *
 * @example
 * await using stores = createStore(process.env.BULKHEAD_STORE);
 * const team = createBudget({ id: "team", limits: { sessionTotal: 5_000_000 }, store: stores.budgets });
 */
export function createStore(
  url: string | undefined = process.env.BULKHEAD_STORE,
  options: Omit<PostgresStoreOptions, "connectionString" | "pool"> = {},
): PostgresStores {
  if (typeof url !== "string" || !/^postgres(ql)?:\/\//.test(url))
    throw new InvalidArgumentError("url", `expected a postgres:// connection string (or BULKHEAD_STORE), got ${JSON.stringify(url)}`);
  const pool = new pg.Pool({
    connectionString: url,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
  });
  pool.on("error", () => undefined);
  const shared = { ...options, pool };
  const budgets = createPostgresBudgetStore(shared);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await budgets.close(); // its background sweep
    await pool.end();
  };
  return {
    budgets,
    workHook: createPostgresWorkHookStore(shared),
    proposals: createPostgresProposalStore(shared),
    sessions: createPostgresSessionRegistry(shared),
    close,
    [Symbol.asyncDispose]: close,
  };
}

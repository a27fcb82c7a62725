import { InvalidArgumentError, StoreUnavailableError } from "@bulkhead/core";
import { connectPostgres, isUnavailable, type PostgresStoreOptions } from "./postgres-connection.js";

/** A held landing lock. */
export interface HeldLandingLock {
  /** Gives the lock to the next host waiting for it. Idempotent. */
  release(): Promise<void>;
}

/**
 * A landing lock on PostgreSQL, for `createCommitLead({ remote: { url, lock } })` of
 * @bulkhead/git-lead: the leads of one remote branch on every host take their turns in the order
 * they asked (a session-level `pg_advisory_lock`, whose waiters PostgreSQL queues first come,
 * first served). Each held lock keeps one connection; a host that dies drops its connection and
 * with it the lock, so nobody waits for a dead lead. The remote's compare-and-swap keeps the
 * branch right without the lock: the lock only spares the losers their rebuilds.
 *
 * @example
 * const lock = createPostgresLandingLock({ connectionString: process.env.BULKHEAD_STORE });
 * const lead = await createCommitLead({ dir: "clones/backend-api.git", author, remote: { url: "git@git.internal:backend-api.git", lock } });
 */
export function createPostgresLandingLock(options: PostgresStoreOptions): {
  acquire(key: string): Promise<HeldLandingLock>;
  close(): Promise<void>;
} {
  // No tables: an advisory lock lives in the server's lock manager.
  const db = connectPostgres("postgres landing-lock", options, () => "", []);
  return {
    async acquire(key) {
      if (typeof key !== "string" || key === "" || key.length > 4096)
        throw new InvalidArgumentError("key", "expected the lock's name (at most 4096 characters)");
      let client;
      try {
        client = await db.pool.connect();
      } catch (error) {
        throw isUnavailable(error) ? new StoreUnavailableError("postgres landing-lock", "take the landing lock", error) : error;
      }
      // A connection the server drops while the lock is held reports here, not as a crash.
      const onError = () => undefined;
      client.on("error", onError);
      try {
        await client.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [key]);
      } catch (error) {
        client.off("error", onError);
        client.release(true);
        throw isUnavailable(error) ? new StoreUnavailableError("postgres landing-lock", "take the landing lock", error) : error;
      }
      let released = false;
      return {
        async release() {
          if (released) return;
          released = true;
          let broken = false;
          await client.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [key]).catch(() => (broken = true));
          client.off("error", onError);
          // A connection whose unlock failed is closed: closing it ends the lock for certain.
          client.release(broken ? true : undefined);
        },
      };
    },
    close: () => db.close(),
  };
}

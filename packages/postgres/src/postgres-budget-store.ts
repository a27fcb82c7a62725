import { randomBytes } from "node:crypto";
import {
  BUDGET_KINDS,
  budgetVector,
  findBudgetRefusal,
  InvalidArgumentError,
  LATE_BUDGET_KINDS,
  type BudgetAmounts,
  type BudgetKind,
  type BudgetLevelState,
  type BudgetStore,
  type BudgetStoreEvent,
  type ReserveOutcome,
  type SettleOutcome,
} from "@bulkhead/core";
import type pg from "pg";
import { connectPostgres, ROLLBACK, type PostgresStoreOptions } from "./postgres-connection.js";

const COLUMN: Record<BudgetKind, string> = {
  contextRead: "context_read",
  generation: "generation",
  toolCalls: "tool_calls",
  sessionTotal: "session_total",
  usd: "usd",
};
const columns = (prefix: string) => BUDGET_KINDS.map((kind) => `${prefix}_${COLUMN[kind]}`);
/** The store's clock: the database's, so hosts with skewed clocks agree on when a lease expires. */
const NOW_MS = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

const ddl = (schema: string) => `
CREATE TABLE IF NOT EXISTS ${schema}.budget_levels (
  id text PRIMARY KEY,
  parent text,
  ${BUDGET_KINDS.map((kind) => `limit_${COLUMN[kind]} float8, used_${COLUMN[kind]} float8 NOT NULL DEFAULT 0, reserved_${COLUMN[kind]} float8 NOT NULL DEFAULT 0`).join(",\n  ")}
);
CREATE TABLE IF NOT EXISTS ${schema}.budget_leases (
  id text PRIMARY KEY,
  chain text[] NOT NULL,
  amounts float8[] NOT NULL,
  expires_at bigint NOT NULL,
  state text NOT NULL
);
CREATE INDEX IF NOT EXISTS budget_leases_expiry ON ${schema}.budget_leases (expires_at) WHERE state = 'active';
CREATE INDEX IF NOT EXISTS budget_leases_expired ON ${schema}.budget_leases (expires_at) WHERE state = 'expired';
CREATE TABLE IF NOT EXISTS ${schema}.budget_ledger (
  seq bigserial PRIMARY KEY,
  settlement text UNIQUE,
  at bigint NOT NULL,
  event jsonb NOT NULL
);`;

type LevelRow = Record<string, string | number | null>;

function toState(row: LevelRow): BudgetLevelState {
  const limits: BudgetAmounts = {};
  const used = budgetVector();
  const reserved = budgetVector();
  for (const kind of BUDGET_KINDS) {
    const limit = row[`limit_${COLUMN[kind]}`];
    if (limit !== null && limit !== undefined) limits[kind] = Number(limit);
    used[kind] = Number(row[`used_${COLUMN[kind]}`]);
    reserved[kind] = Number(row[`reserved_${COLUMN[kind]}`]);
  }
  return { id: String(row.id), ...(row.parent === null ? {} : { parent: String(row.parent) }), limits, used, reserved };
}

const sparse = (amounts: Record<BudgetKind, number>): BudgetAmounts => {
  const result: BudgetAmounts = {};
  for (const kind of BUDGET_KINDS) if (amounts[kind] !== 0) result[kind] = amounts[kind];
  return result;
};
const asArray = (amounts: BudgetAmounts) => BUDGET_KINDS.map((kind) => amounts[kind] ?? 0);
/**
 * A lease id: the budget, then the time, then randomness. Time first keeps new leases together
 * in the primary-key index, so a busy store dirties (and logs) few index pages per commit.
 */
const newLeaseId = (budgetId: string): string => `${budgetId}#${Date.now().toString(36)}-${randomBytes(6).toString("hex")}`;

/** Levels are always locked in one global order (by id), so two hosts never wait on each other in a cycle. */
const lockOrder = (chain: readonly string[]) => [...new Set(chain)].sort();

function checkAmounts(name: string, amounts: BudgetAmounts): void {
  if (typeof amounts !== "object" || amounts === null) throw new InvalidArgumentError(name, "expected { kind: amount }");
  for (const [kind, amount] of Object.entries(amounts)) {
    if (!BUDGET_KINDS.includes(kind as BudgetKind)) throw new InvalidArgumentError(name, `unknown budget kind "${kind}"`);
    if (typeof amount !== "number" || !(amount >= 0) || !Number.isFinite(amount))
      throw new InvalidArgumentError(name, `${kind} must be a non-negative number, got ${JSON.stringify(amount)}`);
  }
}
function checkChain(chain: readonly string[]): void {
  if (!Array.isArray(chain) || chain.length === 0 || !chain.every((id) => typeof id === "string" && id !== ""))
    throw new InvalidArgumentError("chain", "expected the budget's id, then its parents' ids");
}

/**
 * A {@link BudgetStore} on PostgreSQL, shared by every host that connects to the same database.
 *
 * A reservation is one transaction with one conditional `UPDATE … WHERE used + reserved + amount
 * <= limit RETURNING` per level, taken in id order (so hosts never deadlock): a level that does
 * not fit updates no row, and the transaction rolls back having held nothing. A settlement
 * removes its lease, moves the hold to spend at every level and writes the ledger row in the same
 * transaction; the ledger's unique settlement id makes a retried settle a no-op. Leases expire on
 * the database's clock. When the database cannot be reached, every call throws
 * `StoreUnavailableError` and grants nothing; the pool reconnects by itself once it is back.
 *
 * @example
 * const store = createPostgresBudgetStore({ connectionString: process.env.BULKHEAD_STORE });
 * const team = createBudget({ id: "team", limits: { sessionTotal: 5_000_000 }, store });
 * const lease = await team.reserveAsync({ amounts: { generation: 4_096 } });
 */
export function createPostgresBudgetStore(
  options: PostgresStoreOptions & {
    /**
     * How often this store gives back the holds of expired leases by itself, so a host that died
     * holding reservations frees them within a TTL plus this, even when nobody is refused or
     * reads the levels (those sweep too). 0 turns the background sweep off. @default 30000
     */
    sweepIntervalMs?: number;
    /**
     * How long an expired lease is kept so a late `settle` still books its spend; older expired
     * leases are deleted by the sweep (a settle after that is `unknown-lease`). @default 86400000 (a day)
     */
    expiredLeaseRetentionMs?: number;
  },
): BudgetStore {
  const { sweepIntervalMs = 30_000, expiredLeaseRetentionMs = 86_400_000 } = options ?? {};
  if (!(Number.isInteger(sweepIntervalMs) && sweepIntervalMs >= 0))
    throw new InvalidArgumentError("options.sweepIntervalMs", `expected a whole number of ms (0 for off), got ${sweepIntervalMs}`);
  if (!(Number.isInteger(expiredLeaseRetentionMs) && expiredLeaseRetentionMs >= 0))
    throw new InvalidArgumentError("options.expiredLeaseRetentionMs", `expected a whole number of ms, got ${expiredLeaseRetentionMs}`);
  const db = connectPostgres("postgres budget", options, ddl, [
    "budget_levels",
    "budget_leases",
    "budget_leases_expiry",
    "budget_leases_expired",
    "budget_ledger",
  ]);
  const table = (name: string) => `${db.schema}.${name}`;
  const levelsTable = table("budget_levels");
  const leasesTable = table("budget_leases");
  const ledgerTable = table("budget_ledger");

  const fits = (kind: BudgetKind, parameter: number) => {
    const [limit, used, reserved] = [`limit_${COLUMN[kind]}`, `used_${COLUMN[kind]}`, `reserved_${COLUMN[kind]}`];
    const amount = `$${parameter}::float8`;
    // The same arithmetic, in the same order, as findBudgetRefusal's `limit - used - reserved`.
    const room = `(${amount} = 0 OR ${amount} <= ${limit} - ${used} - ${reserved})`;
    // The same rule as findBudgetRefusal: a late kind that reached its limit refuses everything.
    return LATE_BUDGET_KINDS.includes(kind) ? `(${limit} IS NULL OR (${used} < ${limit} AND ${room}))` : `(${limit} IS NULL OR ${room})`;
  };
  const reserveSql = `UPDATE ${levelsTable} SET ${BUDGET_KINDS.map((kind, index) => `reserved_${COLUMN[kind]} = reserved_${COLUMN[kind]} + $${index + 2}::float8`).join(", ")}
    WHERE id = $1 AND ${BUDGET_KINDS.map((kind, index) => fits(kind, index + 2)).join(" AND ")} RETURNING *`;
  const moveSql = `UPDATE ${levelsTable} SET ${BUDGET_KINDS.map(
    (kind, index) =>
      `reserved_${COLUMN[kind]} = reserved_${COLUMN[kind]} - $${index + 2}::float8, used_${COLUMN[kind]} = used_${COLUMN[kind]} + $${index + 7}::float8`,
  ).join(", ")} WHERE id = $1 RETURNING *`;

  const readLevels = async (client: pg.PoolClient | undefined, ids: readonly string[]): Promise<BudgetLevelState[]> => {
    const text = `SELECT * FROM ${levelsTable} WHERE id = ANY($1::text[])`;
    const { rows } = client ? await client.query<LevelRow>(text, [[...ids]]) : await db.query<LevelRow>("read budgets", text, [[...ids]]);
    const byId = new Map(rows.map((row) => [String(row.id), toState(row)]));
    return ids.map((id) => {
      const level = byId.get(id);
      if (!level) throw new InvalidArgumentError("budgetId", `no budget level "${id}" in this store: define it first (createBudget does)`);
      return level;
    });
  };
  /** Moves holds and spend at every level of a chain, in lock order; returns the levels in chain order. */
  const move = async (client: pg.PoolClient, chain: readonly string[], hold: readonly number[], spend: readonly number[]) => {
    const states = new Map<string, BudgetLevelState>();
    for (const id of lockOrder(chain)) {
      const { rows } = await client.query<LevelRow>(moveSql, [id, ...hold, ...spend]);
      if (rows[0]) states.set(id, toState(rows[0]));
    }
    return chain.filter((id) => states.has(id)).map((id) => states.get(id)!);
  };
  const zero = BUDGET_KINDS.map(() => 0);

  const sweep = async (): Promise<number> => {
    const count = await db.transaction("return expired leases", async (client) => {
      const { rows } = await client.query<{ chain: string[]; amounts: number[] }>(
        `WITH expired AS (
           SELECT id FROM ${leasesTable} WHERE state = 'active' AND expires_at <= ${NOW_MS} ORDER BY id LIMIT 1000 FOR UPDATE SKIP LOCKED)
         UPDATE ${leasesTable} AS lease SET state = 'expired' FROM expired WHERE lease.id = expired.id RETURNING lease.chain, lease.amounts`,
      );
      if (rows.length === 0) return 0;
      const totals = new Map<string, number[]>();
      for (const row of rows) {
        for (const id of new Set(row.chain)) {
          const total = totals.get(id) ?? BUDGET_KINDS.map(() => 0);
          row.amounts.forEach((amount, index) => (total[index]! += Number(amount)));
          totals.set(id, total);
        }
      }
      for (const id of lockOrder([...totals.keys()])) await client.query(moveSql, [id, ...totals.get(id)!, ...zero]);
      return rows.length;
    });
    return count ?? 0;
  };
  /** Deletes expired leases past their retention (a bounded batch per call): their holds went back long ago. */
  const prune = async (): Promise<number> => {
    const { rowCount } = await db.query(
      "prune expired leases",
      `DELETE FROM ${leasesTable} WHERE id IN (
         SELECT id FROM ${leasesTable} WHERE state = 'expired' AND expires_at <= ${NOW_MS} - $1::bigint LIMIT 1000 FOR UPDATE SKIP LOCKED)`,
      [expiredLeaseRetentionMs],
    );
    return rowCount ?? 0;
  };
  // The background sweep: one at a time, never keeps the process alive, stopped by close().
  let sweeping = false;
  const timer =
    sweepIntervalMs === 0
      ? undefined
      : setInterval(() => {
          if (sweeping) return;
          sweeping = true;
          // A database that is down now is tried again on the next tick: nothing to report.
          void (async () => {
            while ((await sweep()) >= 1000);
            while ((await prune()) >= 1000);
          })()
            .catch(() => undefined)
            .finally(() => (sweeping = false));
        }, sweepIntervalMs);
  timer?.unref();
  const close = async (): Promise<void> => {
    clearInterval(timer);
    await db.close();
  };

  const book = async (
    client: pg.PoolClient,
    event: { type: "settle" | "charge"; chain: readonly string[]; amounts: BudgetAmounts; lease?: string },
    settlement: string | undefined,
  ): Promise<boolean> => {
    const { rowCount } = await client.query(
      `INSERT INTO ${ledgerTable} (settlement, at, event) VALUES ($1, ${NOW_MS}, $2::jsonb) ON CONFLICT (settlement) DO NOTHING`,
      [settlement ?? null, JSON.stringify({ ...event, ...(settlement === undefined ? {} : { settlement }) })],
    );
    return rowCount === 1;
  };
  const settledBefore = async (settlement: string) =>
    (await db.query("check a settlement", `SELECT 1 FROM ${ledgerTable} WHERE settlement = $1`, [settlement])).rowCount === 1;

  return {
    kind: "postgres",
    async define({ id, parent, limits }) {
      if (typeof id !== "string" || id === "") throw new InvalidArgumentError("id", "expected the budget level's id");
      checkAmounts("limits", limits);
      const limitColumns = columns("limit");
      await db.query(
        "define a budget",
        `INSERT INTO ${levelsTable} (id, parent, ${limitColumns.join(", ")}) VALUES ($1, $2, ${limitColumns.map((_, index) => `$${index + 3}::float8`).join(", ")})
         ON CONFLICT (id) DO NOTHING`,
        [id, parent ?? null, ...BUDGET_KINDS.map((kind) => limits[kind] ?? null)],
      );
      return (await db.query<LevelRow>("read a budget", `SELECT * FROM ${levelsTable} WHERE id = $1`, [id])).rows.map(toState)[0]!;
    },

    async reserve({ chain, amounts, ttlMs }): Promise<ReserveOutcome> {
      checkChain(chain);
      checkAmounts("amounts", amounts);
      if (!(typeof ttlMs === "number" && ttlMs > 0 && Number.isFinite(ttlMs)))
        throw new InvalidArgumentError("ttlMs", `expected a positive duration, got ${ttlMs}`);
      const values = asArray(amounts);
      for (let attempt = 0; ; attempt++) {
        const granted = await db.transaction("reserve", async (client) => {
          const states = new Map<string, BudgetLevelState>();
          for (const id of lockOrder(chain)) {
            const { rows } = await client.query<LevelRow>(reserveSql, [id, ...values]);
            if (!rows[0]) return ROLLBACK;
            states.set(id, toState(rows[0]));
          }
          const id = newLeaseId(chain[0]!);
          const { rows } = await client.query<{ expires_at: string }>(
            `INSERT INTO ${leasesTable} (id, chain, amounts, expires_at, state) VALUES ($1, $2::text[], $3::float8[], ${NOW_MS} + $4::bigint, 'active') RETURNING expires_at`,
            [id, [...chain], values, Math.ceil(ttlMs)],
          );
          return {
            lease: { id, chain: [...chain], amounts: sparse(budgetVector(amounts)), expiresAt: Number(rows[0]!.expires_at) },
            levels: chain.map((level) => states.get(level)!),
          };
        });
        if (granted) return { granted: true, ...granted };
        // Refused somewhere: leases that expired may still hold; give them back and look again.
        const swept = await sweep();
        const levels = await readLevels(undefined, chain);
        const refusal = findBudgetRefusal(levels, amounts);
        // Otherwise it fits now (others settled meanwhile, or expired holds went back): try again.
        if (refusal && (swept === 0 || attempt >= 3)) return { granted: false, refusal, levels };
      }
    },

    async settle({ leaseId, amounts, settlementId = leaseId }): Promise<SettleOutcome> {
      checkAmounts("amounts", amounts);
      const result = await db.transaction("settle", async (client) => {
        const { rows } = await client.query<{ chain: string[]; amounts: number[]; state: string }>(
          `DELETE FROM ${leasesTable} WHERE id = $1 RETURNING chain, amounts, state`,
          [leaseId],
        );
        const lease = rows[0];
        if (!lease) return ROLLBACK;
        if (
          !(await book(
            client,
            { type: "settle", chain: lease.chain, amounts: sparse(budgetVector(amounts)), lease: leaseId },
            settlementId,
          ))
        )
          return ROLLBACK;
        const hold = lease.state === "active" ? lease.amounts.map(Number) : zero;
        return { status: "applied" as const, levels: await move(client, lease.chain, hold, asArray(amounts)) };
      });
      if (result) return result;
      return { status: (await settledBefore(settlementId)) ? "duplicate" : "unknown-lease", levels: [] };
    },

    async charge({ chain, amounts, settlementId }): Promise<SettleOutcome> {
      checkChain(chain);
      checkAmounts("amounts", amounts);
      const result = await db.transaction("charge", async (client) => {
        await readLevels(client, chain);
        if (!(await book(client, { type: "charge", chain, amounts: sparse(budgetVector(amounts)) }, settlementId))) return ROLLBACK;
        return { status: "applied" as const, levels: await move(client, chain, zero, asArray(amounts)) };
      });
      return result ?? { status: "duplicate", levels: await readLevels(undefined, chain) };
    },

    async release(leaseId) {
      const released = await db.transaction("release", async (client) => {
        const { rows } = await client.query<{ chain: string[]; amounts: number[] }>(
          `DELETE FROM ${leasesTable} WHERE id = $1 AND state = 'active' RETURNING chain, amounts`,
          [leaseId],
        );
        if (!rows[0]) return false;
        await move(client, rows[0].chain, rows[0].amounts.map(Number), zero);
        return true;
      });
      return released === true;
    },

    async extend({ budgetId, kind, amount, approvedBy, reason }) {
      if (!BUDGET_KINDS.includes(kind)) throw new InvalidArgumentError("kind", `unknown budget kind "${kind}"`);
      if (!(amount > 0 && Number.isFinite(amount))) throw new InvalidArgumentError("amount", `expected a positive amount, got ${amount}`);
      const level = await db.transaction("extend", async (client) => {
        const column = `limit_${COLUMN[kind]}`;
        const { rows } = await client.query<LevelRow>(
          `UPDATE ${levelsTable} SET ${column} = ${column} + $2::float8 WHERE id = $1 AND ${column} IS NOT NULL RETURNING *`,
          [budgetId, amount],
        );
        if (!rows[0])
          throw new InvalidArgumentError("budgetId", `budget "${budgetId}" is not in this store or has no ${kind} limit to extend`);
        const event = { type: "extend", budget: budgetId, kind, amount, approvedBy, ...(reason === undefined ? {} : { reason }) };
        await client.query(`INSERT INTO ${ledgerTable} (at, event) VALUES (${NOW_MS}, $1::jsonb)`, [JSON.stringify(event)]);
        return toState(rows[0]);
      });
      return level!;
    },

    async levels(ids) {
      await sweep();
      return readLevels(undefined, ids);
    },

    sweep,

    async ledger() {
      const { rows } = await db.query<{ at: string; event: BudgetStoreEvent }>(
        "read the ledger",
        `SELECT at, event FROM ${ledgerTable} ORDER BY seq`,
      );
      return rows.map((row) => ({ ...row.event, at: Number(row.at) }) as BudgetStoreEvent);
    },

    close,
    [Symbol.asyncDispose]: close,
  };
}

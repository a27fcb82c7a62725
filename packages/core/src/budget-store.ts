import { BUDGET_KINDS, LATE_BUDGET_KINDS, type BudgetKind } from "./budget-kind.js";

/** Amounts per kind; a missing kind is zero. */
export type BudgetAmounts = Partial<Record<BudgetKind, number>>;

/** One level of a (possibly nested) budget as a store holds it. */
export interface BudgetLevelState {
  readonly id: string;
  /** The enclosing level's id, as given when the level was first defined. */
  readonly parent?: string;
  /** Limits per kind (extensions included); a missing kind is unlimited. */
  readonly limits: BudgetAmounts;
  /** Spend settled or charged at this level (its children's included). */
  readonly used: Record<BudgetKind, number>;
  /** Amounts held by active leases at this level (its children's included). */
  readonly reserved: Record<BudgetKind, number>;
}

/** A reservation held at every level of `chain` until it is settled, released or expires. */
export interface StoredLease {
  readonly id: string;
  /** The levels it holds on, the budget first, then its parents outward. */
  readonly chain: readonly string[];
  readonly amounts: BudgetAmounts;
  /** When the hold goes back by itself, in ms since the epoch, on the store's clock. */
  readonly expiresAt: number;
}

/** Why a reservation did not fit: the first level (in chain order) and kind that refused it. */
export interface BudgetRefusal {
  readonly budgetId: string;
  readonly kind: BudgetKind;
  readonly requested: number;
  readonly available: number;
  readonly limit: number;
}

/** What {@link BudgetStore.reserve} answers. `levels` is the chain's state after the call. */
export type ReserveOutcome =
  | { readonly granted: true; readonly lease: StoredLease; readonly levels: readonly BudgetLevelState[] }
  | { readonly granted: false; readonly refusal: BudgetRefusal; readonly levels: readonly BudgetLevelState[] };

/** What {@link BudgetStore.settle} and {@link BudgetStore.charge} answer. */
export interface SettleOutcome {
  /**
   * `applied`: booked now. `duplicate`: this settlement id was already booked (a retry), nothing
   * changed. `unknown-lease`: no such lease (never reserved, or released), nothing booked.
   */
  readonly status: "applied" | "duplicate" | "unknown-lease";
  readonly levels: readonly BudgetLevelState[];
}

/** One durable fact of a budget store; the same shape as a budget ledger's events. */
export type BudgetStoreEvent =
  | {
      type: "settle" | "charge";
      at: number;
      chain: string[];
      amounts: BudgetAmounts;
      lease?: string;
      /** The id that makes a retried settlement a no-op. */
      settlement?: string;
    }
  | { type: "extend"; at: number; budget: string; kind: BudgetKind; amount: number; approvedBy: string; reason?: string };

/**
 * Where budgets keep limits, spend, reservations and their ledger, so that every process (and,
 * with PostgreSQL, every host) that uses the same store enforces the same caps.
 *
 * Rules every implementation follows (the conformance suite checks them):
 * - `reserve` is all or nothing over the chain: it holds at every level, or at none, and a level
 *   never holds more than `limit - used` (see {@link findBudgetRefusal} for the exact rule).
 * - A lease whose `expiresAt` passed gives its hold back (on the next call that sweeps); spend
 *   settled on it afterwards is still booked.
 * - `settle` and `charge` with a settlement id already booked change nothing (`duplicate`).
 * - Every settlement, charge and extension is in `ledger()`, written atomically with the change,
 *   so replaying the ledger gives exactly the stored `used` and `limits`.
 * - A store that cannot reach its backend throws `StoreUnavailableError` and grants nothing.
 */
export interface BudgetStore {
  /** A name for messages: `"files"`, `"postgres"`, `"memory"`. */
  readonly kind: string;
  /** Creates the level when it is new; an existing level keeps its stored limits. */
  define(level: { id: string; parent?: string; limits: BudgetAmounts }): Promise<BudgetLevelState>;
  /** Holds `amounts` at every level of `chain` for `ttlMs`, or refuses without holding anything. */
  reserve(request: { chain: readonly string[]; amounts: BudgetAmounts; ttlMs: number }): Promise<ReserveOutcome>;
  /** Ends a lease with what was spent. `settlementId` defaults to the lease id. */
  settle(request: { leaseId: string; amounts: BudgetAmounts; settlementId?: string }): Promise<SettleOutcome>;
  /** Books spend without a lease. With a `settlementId`, a retried charge is booked once. */
  charge(request: { chain: readonly string[]; amounts: BudgetAmounts; settlementId?: string }): Promise<SettleOutcome>;
  /** Ends a lease without spend; false when it was not active. */
  release(leaseId: string): Promise<boolean>;
  /** Raises a level's limit of one kind, recorded in the ledger. */
  extend(request: { budgetId: string; kind: BudgetKind; amount: number; approvedBy: string; reason?: string }): Promise<BudgetLevelState>;
  /** The current state of these levels (expired leases swept first), in the order asked. */
  levels(ids: readonly string[]): Promise<BudgetLevelState[]>;
  /** Gives back the holds of expired leases; returns how many expired. */
  sweep(): Promise<number>;
  /** Every settlement, charge and extension, in the order they were booked. */
  ledger(): Promise<BudgetStoreEvent[]>;
  /** Releases connections and files. Idempotent. */
  close(): Promise<void>;
  /** Calls `close()`, so `await using store = createFileBudgetStore(dir)` works. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Amounts as a full vector, every kind present. */
export function budgetVector(amounts: BudgetAmounts = {}): Record<BudgetKind, number> {
  return {
    contextRead: amounts.contextRead ?? 0,
    generation: amounts.generation ?? 0,
    toolCalls: amounts.toolCalls ?? 0,
    sessionTotal: amounts.sessionTotal ?? 0,
    usd: amounts.usd ?? 0,
  };
}

/**
 * The one reservation rule, for every store: per level with a limit, a non-zero amount must fit
 * in `limit - used - reserved`; and a late kind (session total, dollars) whose spend reached its
 * limit refuses everything. Returns the first level (in the order given) and kind that refuses.
 */
export function findBudgetRefusal(levels: readonly BudgetLevelState[], amounts: BudgetAmounts): BudgetRefusal | undefined {
  for (const level of levels) {
    for (const kind of BUDGET_KINDS) {
      const limit = level.limits[kind];
      if (limit === undefined) continue;
      const amount = amounts[kind] ?? 0;
      const used = level.used[kind];
      const exhausted = LATE_BUDGET_KINDS.includes(kind) && used >= limit;
      const available = limit - used - level.reserved[kind];
      if (exhausted || (amount !== 0 && amount > available))
        return { budgetId: level.id, kind, requested: amount, available: Math.max(0, available), limit };
    }
  }
  return undefined;
}

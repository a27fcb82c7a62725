import {
  AbortedError,
  createDeadline,
  InvalidArgumentError,
  lazySchema,
  TypedEmitter,
  validateOptions,
  type BudgetLevelState,
  type BudgetStore,
  type ResolvedScope,
  type TokenCounter,
  type Usage,
} from "@bulkhead/core";
import { BUDGET_ACTIONS, BUDGET_KINDS, type BudgetAction, type BudgetKind } from "./budget-kinds.js";
import { BudgetExceededError, formatAmount } from "./budget-exceeded-error.js";
import { createTokenCounter } from "./create-token-counter.js";
import { LeaseNotActiveError } from "./lease-not-active-error.js";
import type { Ledger, LedgerEvent, RestoreOptions } from "./ledger.js";
import { priceUsage } from "./price-usage.js";
import type { PriceEntry } from "./prices.js";
import { UnknownModelError } from "./unknown-model-error.js";
import { z } from "zod";

/** Limits per kind; a kind without a limit is tracked but never enforced. */
export type BudgetLimits = Partial<Record<BudgetKind, number>>;
type Amounts = Partial<Record<BudgetKind, number>>;

/** Events of a {@link Budget}; each level of a nested budget emits its own. */
export interface BudgetEvents {
  "budget-warning": { budgetId: string; kind: BudgetKind; used: number; limit: number; ratio: number };
  "budget-exceeded": { budgetId: string; kind: BudgetKind; action: BudgetAction; used: number; limit: number };
  "handover-required": { budgetId: string; used: number; limit: number };
  /**
   * A request was refused before it ran: which check (`at`), which budget's limit (`budgetId`,
   * this one or a parent), and by how much it did not fit.
   */
  "budget-refused": {
    budgetId: string;
    kind: BudgetKind;
    at: "reserve" | "tryReserve" | "beforeToolCall" | "meterStream" | "checkContext";
    requested: number;
    available: number;
    limit: number;
  };
  /**
   * A usage was booked that no price is known for (its model is in neither the budget's prices
   * nor the catalog): its tokens count, its dollars are unknown, and a `usd` limit on this budget
   * or a parent refuses every later reservation until {@link Budget.bookUnpriced} books them.
   */
  "price-unknown": { budgetId: string; model: string; usage: Usage };
}

/** Options of {@link MeterResult.reconcile}. */
export interface BookOptions {
  /**
   * Price the usage as this model's (a call's own model), instead of the budget's `pricing.model`.
   * @default the budget's `pricing.model`
   */
  model?: string;
}

/** The options of {@link Budget.settle} and {@link Budget.settleAsync}. */
export interface SettleOptions extends BookOptions {
  /** The lease to end, from `reserve`, `tryReserve` or `beforeToolCall` of this budget. */
  lease: Lease;
  /**
   * What the call spent: a number of units of the lease's kind; a usage (input counts as context
   * read, output as generation, both as the session total; for a tool-call lease both count as
   * tool calls); or amounts per kind (`{ generation: 2_900 }`).
   */
  spent: number | Usage | BudgetLimits;
  /**
   * With a store: a retried settle with the same id is booked once. Ignored without a store.
   * @default the lease id
   */
  settlementId?: string;
}

/** The options of {@link Budget.charge} and {@link Budget.chargeAsync}. */
export interface ChargeOptions extends BookOptions {
  /** What was spent without a reservation: a usage, or amounts per kind (`{ usd: 0.12 }`). */
  spent: Usage | BudgetLimits;
  /**
   * With a store: a retried charge with the same id is booked once. Ignored without a store.
   * @default undefined (every call is booked)
   */
  settlementId?: string;
}

/** A reservation: amounts held on a budget and all its parents until settled, released or expired. */
export interface Lease {
  readonly id: string;
  readonly budgetId: string;
  readonly amounts: Readonly<Amounts>;
  readonly expiresAt: number;
  readonly state: "active" | "settled" | "released" | "expired";
}

/** The options of {@link createBudget}. */
export interface CreateBudgetOptions {
  /**
   * Names the budget in events, errors and the ledger: letters, digits, `.`, `_`, `:`, `/`, `-`.
   * @default "budget"
   */
  id?: string;
  /** The limit of each kind, in tokens (`usd` in dollars); a kind left out is tracked, never enforced. */
  limits: BudgetLimits;
  /**
   * The enclosing budget (task ⊂ session ⊂ team): every reservation holds at every level.
   * @default undefined (a top-level budget)
   */
  parent?: Budget;
  /**
   * Where settlements and extensions are recorded durably.
   * @default undefined (nothing is recorded)
   */
  ledger?: Ledger;
  /** Emit `budget-warning` when a kind reaches this share of its limit. @default 0.8 */
  warningRatio?: number;
  /** How long a lease holds its reservation unless settled or released. @default 600_000 */
  leaseTtlMs?: number;
  /** The clock, for tests. @default Date.now */
  now?: () => number;
  /**
   * Prices every usage this budget books (settle, charge, a stream's reconcile) with
   * {@link priceUsage}, so a `usd` limit is fed. Dollars are known only after a call: once spend
   * reaches the `usd` limit, every later reservation is refused. Without it, `usd` moves only
   * through `charge({ spent: { usd } })`. `prices` are your own entries, tried before the catalog.
   * @default undefined (usage is not priced)
   */
  pricing?: { model: string; prices?: PriceEntry[] };
  /**
   * Where limits, spend, leases and the ledger live, shared with every budget (in any process, on
   * any host) that uses the same store and ids: `createFileBudgetStore` for one host,
   * `createPostgresBudgetStore` (@bulkhead/postgres) for several. A budget with a store is used
   * through the async methods (`reserveAsync`, `settleAsync`, ...); the sync ones throw. Its
   * parent must use the same store. The store keeps its own ledger, so `ledger` is not allowed.
   * See docs/scaling.md.
   * @default undefined (the budget lives in this process)
   */
  store?: BudgetStore;
}

/** The options of {@link Budget.reserve} and its variants (`tryReserve`, `reserveAsync`, `tryReserveAsync`). */
export interface ReserveOptions {
  /**
   * The estimate to hold, per kind: `{ generation: 4_096 }` or `{ contextRead: 1_200, generation: 4_096 }`.
   * Token kinds also hold on the session total, unless `sessionTotal` is given itself. A
   * plain-number settlement is booked to the first kind named (other than `sessionTotal`).
   */
  amounts: BudgetLimits;
  /**
   * How long the lease holds its reservation unless settled or released.
   * @default the budget's `leaseTtlMs`
   */
  ttlMs?: number;
}

/** The options of {@link Budget.extend} and {@link Budget.extendAsync}. */
export interface ExtendOptions {
  /** The kind whose limit is raised; the budget must have a limit of it. */
  kind: BudgetKind;
  /** How much to add to the limit (tokens, or dollars for `usd`); positive. */
  amount: number;
  /** Who approved the extension (recorded in the ledger). */
  approvedBy: string;
  /**
   * Why, recorded with the extension.
   * @default undefined
   */
  reason?: string;
}

const budgetMarker = Symbol.for("bulkhead.budget");

/** Budgets are recognised by marker, not `instanceof`, so two installed copies accept each other's. */
function isBudget(value: unknown): value is Budget {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[budgetMarker] === true;
}

const limitSchema = () =>
  z
    .number({ error: (issue) => `must be a non-negative number, got ${JSON.stringify(issue.input) ?? String(issue.input)}` })
    .nonnegative({ error: (issue) => `must be a non-negative number, got ${JSON.stringify(issue.input)}` })
    .optional();

const optionsSchema = lazySchema(() =>
  z
    .object({
      id: z
        .string({ error: "expected a budget id of letters, digits, '.', '_', ':', '/' or '-'" })
        .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/, {
          error: (issue) => `expected a budget id of letters, digits, '.', '_', ':', '/' or '-', got ${JSON.stringify(issue.input)}`,
        })
        .optional(),
      limits: z.strictObject(
        Object.fromEntries(BUDGET_KINDS.map((kind) => [kind, limitSchema()])) as Record<BudgetKind, ReturnType<typeof limitSchema>>,
        {
          error: (issue) =>
            issue.code === "unrecognized_keys"
              ? `unknown budget kind ${issue.keys.map((key) => `"${key}"`).join(", ")}: use ${BUDGET_KINDS.join(", ")}`
              : `expected { ${BUDGET_KINDS.map((kind) => `${kind}?`).join(", ")} }`,
        },
      ),
      parent: z.custom<Budget>(isBudget, "expected a Budget from createBudget").optional(),
      ledger: z
        .custom<Ledger>(
          (value) => typeof (value as Ledger | null)?.append === "function" && typeof (value as Ledger | null)?.read === "function",
          "expected a Ledger (createFileLedger, createMemoryLedger)",
        )
        .optional(),
      warningRatio: z
        .number()
        .refine((ratio) => ratio > 0 && ratio <= 1, { error: (issue) => `expected a ratio in (0, 1], got ${String(issue.input)}` })
        .optional(),
      leaseTtlMs: z
        .number()
        .positive({ error: (issue) => `expected a positive duration, got ${String(issue.input)}` })
        .optional(),
      now: z.custom<() => number>((value) => typeof value === "function", "expected a function returning milliseconds").optional(),
      pricing: z
        .object(
          {
            model: z.string().min(1),
            prices: z.array(z.custom<PriceEntry>((value) => typeof value === "object" && value !== null)).optional(),
          },
          {
            error: "expected { model, prices? }",
          },
        )
        .optional(),
      store: z
        .custom<BudgetStore>(
          (value) => typeof (value as BudgetStore | null)?.reserve === "function",
          "expected a BudgetStore (createFileBudgetStore, createPostgresBudgetStore)",
        )
        .optional(),
    })
    .superRefine((options, context) => {
      if (options.store !== undefined && options.ledger !== undefined)
        context.addIssue({
          code: "custom",
          path: ["ledger"],
          message: "a budget with a store keeps its ledger in the store: pass one of them",
        });
    }),
);

/** The answer of {@link Budget.checkContext}. */
export type ContextCheck =
  | { allowed: true; tokens: number; available: number }
  | { allowed: false; tokens: number; available: number; reason: "context-read" | "session-total"; message: string };

/** The answer of {@link Budget.beforeToolCall}: a lease to settle, or a message for the model. */
export type ToolCallDecision =
  { allowed: true; lease: Lease } | { allowed: false; reason: "tool-calls" | "session-total" | "usd"; message: string };

/** A text chunk of a model stream: a string, or an object with `text`, `delta` or `textDelta`. */
export type StreamChunk = string | { text?: string; delta?: string; textDelta?: string };

export interface MeterStreamOptions {
  /** Counts the deltas. @default an o200k_base counter */
  counter?: TokenCounter;
  /** Aborted when the meter stops the stream, so the upstream request is canceled. */
  abortController?: AbortController;
  abortSignal?: AbortSignal;
  /** A reservation made for this call; its generation amount is used first. */
  lease?: Lease;
}

/** How a metered stream ended. */
export interface MeterResult {
  /** The text of every delta that fit in the budget. */
  text: string;
  /** Why it stopped early, or null when the stream ended by itself. */
  stoppedBy: "generation" | "session-total" | null;
  /** Output tokens counted locally (every delta received, also the one that did not fit). */
  outputTokens: number;
  /** Books the provider's reported usage in place of the local count; call it once. */
  reconcile(usage: Usage, options?: BookOptions): void;
}

/** One amount per kind, always the same shape, so the hot path is plain field arithmetic. */
type Vector = Record<BudgetKind, number>;

function vector(contextRead = 0, generation = 0, toolCalls = 0, sessionTotal = 0, usd = 0): Vector {
  return { contextRead, generation, toolCalls, sessionTotal, usd };
}

function addInto(target: Vector, source: Vector, sign: 1 | -1 = 1): void {
  target.contextRead += sign * source.contextRead;
  target.generation += sign * source.generation;
  target.toolCalls += sign * source.toolCalls;
  target.sessionTotal += sign * source.sessionTotal;
  target.usd += sign * source.usd;
}

/** The non-zero entries, for ledger events and public views. */
function sparse(amounts: Vector): Amounts {
  const result: Amounts = {};
  for (const kind of BUDGET_KINDS) if (amounts[kind] !== 0) result[kind] = amounts[kind];
  return result;
}

interface LeaseRecord extends Lease {
  state: Lease["state"];
  amounts: Vector;
  /** The kind a plain-number settlement is booked to. */
  primary: BudgetKind;
}

const extendSchema = lazySchema(() =>
  z.object({
    kind: z.enum(BUDGET_KINDS, { error: (issue) => `unknown budget kind ${JSON.stringify(issue.input)}: use ${BUDGET_KINDS.join(", ")}` }),
    amount: z
      .number()
      .positive({ error: (issue) => `expected a positive amount, got ${String(issue.input)}` })
      .refine(Number.isFinite, "expected a finite amount"),
    approvedBy: z.string({ error: "say who approved the extension" }).trim().min(1, "say who approved the extension"),
    reason: z.string().optional(),
  }),
);

const ABORTED = Symbol("aborted");

// Set by the class's static block: the module's private ways to build a budget and replay into one.
let construct: (options: CreateBudgetOptions) => Budget;
let replay: (budget: Budget, event: LedgerEvent) => void;

/**
 * Seed 000's four budget kinds, each with its own enforcement point and action, plus a dollar
 * cap. Reservations make parallel callers safe: with upper-bound estimates, committed spend never
 * exceeds a cap, at any level of a nested budget. Nothing throws in the middle of a call: the
 * session total marks the budget exhausted and emits `handover-required`.
 */
export class Budget extends TypedEmitter<BudgetEvents> {
  static {
    // The module's own doors into a budget: construction (createBudget, restoreBudget) and ledger
    // replay stay out of the public API, but the functions beside the class may use them.
    construct = (options) => new Budget(options);
    replay = (budget, event) => budget.#replay(event);
  }

  /**
   * True for a budget from any copy of `@bulkhead/budget` (a `Symbol.for` marker, not
   * `instanceof`, which two installed copies break).
   */
  static isInstance(value: unknown): value is Budget {
    return isBudget(value);
  }

  readonly id: string;
  readonly parent: Budget | undefined;
  /** Limits per kind; Infinity where there is none. */
  readonly #limits: Vector;
  readonly #used = vector();
  readonly #reserved = vector();
  readonly #warned = new Set<BudgetKind>();
  readonly #exceeded = new Set<BudgetKind>();
  /** Models booked here (or in a child) without a price: a usd limit fails closed while any is. */
  readonly #unpriced = new Set<string>();
  #pricing: { model: string; prices: PriceEntry[] } | undefined;
  readonly #leases = new Map<string, LeaseRecord>();
  readonly #chain: Budget[];
  readonly #ledger: Ledger | undefined;
  readonly #warningRatio: number;
  readonly #leaseTtlMs: number;
  readonly #now: () => number;
  readonly #extensions: { kind: BudgetKind; amount: number; approvedBy: string; reason?: string; at: number }[] = [];
  #nextLease = 0;
  readonly #store: BudgetStore | undefined;
  #defined: Promise<void> | undefined;
  /** No lease expires before this time, so sweeping can be skipped until then. */
  #sweepAt = Infinity;

  private constructor(options: CreateBudgetOptions) {
    super();
    const {
      id = "budget",
      limits,
      parent,
      ledger,
      warningRatio = 0.8,
      leaseTtlMs = 600_000,
      now = Date.now,
      pricing,
      store,
    } = validateOptions(optionsSchema(), options, "options");
    // A budget of another copy of this package is recognised, but its private state is not
    // reachable from this copy's class: nest budgets made by one copy.
    if (parent !== undefined && !(#chain in parent))
      throw new InvalidArgumentError(
        "options.parent",
        `budget "${(parent as Budget).id}" was created by another copy of @bulkhead/budget: create nested budgets with the same copy (dedupe the install)`,
      );
    if (parent !== undefined && parent.#store !== store)
      throw new InvalidArgumentError(
        "options.parent",
        `budget "${id}" and its parent "${parent.id}" must use the same store (or both none)`,
      );
    Object.defineProperty(this, budgetMarker, { value: true });
    this.#limits = vector(Infinity, Infinity, Infinity, Infinity, Infinity);
    for (const kind of BUDGET_KINDS) {
      const limit = limits[kind];
      if (limit !== undefined) this.#limits[kind] = limit;
    }
    this.#store = store;
    this.id = id;
    this.parent = parent;
    this.#ledger = ledger;
    this.#warningRatio = warningRatio;
    this.#leaseTtlMs = leaseTtlMs;
    this.#now = now;
    this.#chain = [this, ...(parent ? parent.#chain : [])];
    if (pricing !== undefined) {
      // An unknown model fails here, with the hint to add prices, not at the first settlement.
      priceUsage({ inputTokens: 0, outputTokens: 0 } as Usage, { model: pricing.model, prices: pricing.prices ?? [], at: new Date(now()) });
      this.#pricing = { model: pricing.model, prices: pricing.prices ?? [] };
    }
  }

  /** The current limit of a kind (extensions included), or undefined when unlimited. */
  limit(kind: BudgetKind): number | undefined {
    const limit = this.#limits[kind];
    return limit === Infinity ? undefined : limit;
  }

  /** Spend settled so far at this level (children included). */
  used(kind: BudgetKind): number {
    return this.#used[kind];
  }

  /** Amounts held by active leases at this level (children included). */
  reserved(kind: BudgetKind): number {
    this.#sweep();
    return this.#reserved[kind];
  }

  /** What can still be reserved of a kind, across this budget and all its parents. */
  available(kind: BudgetKind): number {
    let available = Infinity;
    for (const level of this.#chain) {
      level.#sweep();
      available = Math.min(available, level.#limits[kind] - level.#used[kind] - level.#reserved[kind]);
    }
    return Math.max(0, available);
  }

  /** The model whose prices this budget books usage at, when created with `pricing`. */
  get pricedModel(): string | undefined {
    return this.#pricing?.model;
  }

  /** True once the session total (or the dollar limit) is spent here or in a parent: hand over to a new session. */
  get exhausted(): boolean {
    return this.#chain.some(
      (level) =>
        level.#exceeded.has("sessionTotal") || level.#exceeded.has("usd") || (level.#limits.usd !== Infinity && level.#unpriced.size > 0),
    );
  }

  /**
   * Holds an estimate until the call settles: `reserve({ amounts: { generation: 4_096 } })` or
   * `reserve({ amounts: { contextRead: 1_200, generation: 4_096 } })`; token kinds also hold on
   * the session total. Throws {@link BudgetExceededError} when it does not fit at some level.
   */
  reserve(options: ReserveOptions): Lease {
    this.#localOnly("reserve");
    const [amounts, primary, ttlMs] = this.#request(options);
    const refusal = this.#refusal(amounts, "reserve");
    if (refusal) {
      const detail = refusal.level.#unpricedDetail(refusal.kind);
      throw new BudgetExceededError({
        budgetId: refusal.level.id,
        kind: refusal.kind,
        requested: amounts[refusal.kind],
        available: refusal.available,
        limit: refusal.limit,
        ...(detail === undefined ? {} : { detail }),
      });
    }
    return this.#hold(amounts, primary, ttlMs);
  }

  /** Like {@link reserve}, but returns undefined instead of throwing when it does not fit. */
  tryReserve(options: ReserveOptions): Lease | undefined {
    this.#localOnly("tryReserve");
    const [amounts, primary, ttlMs] = this.#request(options);
    return this.#refusal(amounts, "tryReserve") ? undefined : this.#hold(amounts, primary, ttlMs);
  }

  /**
   * Ends a lease with what was actually spent: `settle({ lease, spent: usage })`, where `spent`
   * is a number of units of the lease's kind, a usage (input counts as context read, output as
   * generation, both as the session total; for a tool-call lease both count as tool calls), or
   * amounts per kind. Spend on an expired lease is still booked.
   */
  settle(options: SettleOptions): void {
    this.#localOnly("settle");
    const { lease, spent, model } = this.#booking(options, "settle");
    const record = this.#own(lease, true);
    const [amounts, unpriced] = this.#actual(record, spent, model);
    if (record.state === "active") this.#unhold(record);
    record.state = "settled";
    this.#spend(amounts, "settle", record.id, unpriced);
  }

  /** Ends a lease without spend (the call did not happen). */
  release(lease: Lease): void {
    this.#localOnly("release");
    const record = this.#own(lease, false);
    this.#unhold(record);
    record.state = "released";
  }

  /** Books spend that had no reservation (e.g. a usage report after the fact): `charge({ spent: usage })`. */
  charge(options: ChargeOptions): void {
    this.#localOnly("charge");
    const { spent, model } = this.#booking(options, "charge");
    if ("inputTokens" in spent) {
      const [vector, unpriced] = this.#fromUsage(spent as Usage, "generation", model);
      this.#spend(vector, "charge", undefined, unpriced);
    } else this.#spend(this.#amounts(spent as Amounts, undefined)[0], "charge");
  }

  /** The shape of a settle or charge; the amounts themselves are checked where they are read. */
  #booking<T extends SettleOptions | ChargeOptions>(options: T, method: "settle" | "charge"): T {
    const spent = (options as Partial<T> | null)?.spent;
    if (typeof options !== "object" || options === null || spent === undefined || spent === null)
      throw new InvalidArgumentError(
        "options.spent",
        method === "settle" ? "expected settle({ lease, spent, model? })" : "expected charge({ spent, model? })",
      );
    if (method === "charge" && typeof spent !== "object")
      throw new InvalidArgumentError("options.spent", "expected a Usage or { kind: amount } for charge");
    if (options.model !== undefined && (typeof options.model !== "string" || options.model === ""))
      throw new InvalidArgumentError("options.model", `expected a model name, got ${JSON.stringify(options.model)}`);
    return options;
  }

  /** Models whose usage was booked here without a price (see the `price-unknown` event). */
  get unpricedModels(): readonly string[] {
    return [...this.#unpriced];
  }

  /**
   * Books the dollars of usage that could not be priced (from an invoice or your own table) and
   * lifts the fail-closed refusal of a `usd` limit. Pass prices for the model to avoid it.
   */
  bookUnpriced(usd: number): void {
    if (!(typeof usd === "number" && usd >= 0 && Number.isFinite(usd)))
      throw new InvalidArgumentError("usd", `expected a non-negative number of dollars, got ${JSON.stringify(usd)}`);
    this.#spend(vector(0, 0, 0, 0, usd), "charge", undefined, undefined, true);
  }

  /** Raises a limit after a stop, recording who approved it: `extend({ kind, amount, approvedBy, reason? })`. */
  extend(options: ExtendOptions): void {
    this.#localOnly("extend");
    const { kind, amount, approvedBy, reason } = validateOptions(extendSchema(), options, "options");
    if (this.#limits[kind] === Infinity) throw new InvalidArgumentError("kind", `budget "${this.id}" has no ${kind} limit to extend`);
    const at = this.#now();
    this.#applyExtension({ kind, amount, approvedBy, at, ...(reason === undefined ? {} : { reason }) });
    this.#ledger?.append({ type: "extend", at, budget: this.id, kind, amount, approvedBy, ...(reason === undefined ? {} : { reason }) });
  }

  /** Whether this budget lives in a shared store (and is used through the async methods). */
  get shared(): boolean {
    return this.#store !== undefined;
  }

  /**
   * {@link reserve} for every budget: on a budget with a `store`, one atomic reservation in the
   * store at every level; without one, the same as `reserve`. Throws {@link BudgetExceededError}
   * when it does not fit, and `StoreUnavailableError` (granting nothing) when the store is down.
   */
  async reserveAsync(options: ReserveOptions): Promise<Lease> {
    if (!this.#store) return this.reserve(options);
    const lease = await this.#reserveShared(options, "reserve");
    if ("refusal" in lease) {
      const { refusal } = lease;
      throw new BudgetExceededError(refusal);
    }
    return lease;
  }

  /** {@link tryReserve} for every budget: undefined instead of throwing when it does not fit. */
  async tryReserveAsync(options: ReserveOptions): Promise<Lease | undefined> {
    if (!this.#store) return this.tryReserve(options);
    const lease = await this.#reserveShared(options, "tryReserve");
    return "refusal" in lease ? undefined : lease;
  }

  /**
   * {@link settle} for every budget. With a store, `settlementId` (default: the lease id) makes a
   * retried settle a no-op, so retrying after `StoreUnavailableError` never counts twice.
   */
  async settleAsync(options: SettleOptions): Promise<void> {
    if (!this.#store) return this.settle(options);
    const { lease, spent, model, settlementId } = this.#booking(options, "settle");
    const record = this.#ownShared(lease);
    const [amounts, unpriced] = this.#actual(record, spent, model);
    this.#markUnpriced(unpriced, false);
    const outcome = await this.#store.settle({
      leaseId: record.id,
      amounts: sparse(amounts),
      ...(settlementId === undefined ? {} : { settlementId }),
    });
    if (outcome.status === "unknown-lease") throw new LeaseNotActiveError(record.id, "released, or unknown to the store");
    record.state = "settled";
    this.#absorb(outcome.levels);
  }

  /** {@link release} for every budget. */
  async releaseAsync(lease: Lease): Promise<void> {
    if (!this.#store) return this.release(lease);
    const record = this.#ownShared(lease);
    await this.#store.release(record.id);
    record.state = "released";
    await this.refresh();
  }

  /** {@link charge} for every budget; with a store, `settlementId` makes a retried charge count once. */
  async chargeAsync(options: ChargeOptions): Promise<void> {
    if (!this.#store) return this.charge(options);
    const { spent, model, settlementId } = this.#booking(options, "charge");
    const [vector, unpriced] =
      "inputTokens" in spent
        ? this.#fromUsage(spent as Usage, "generation", model)
        : [this.#amounts(spent as Amounts, undefined)[0], undefined];
    this.#markUnpriced(unpriced, false);
    await this.#defineShared();
    const outcome = await this.#store.charge({
      chain: this.#chain.map((level) => level.id),
      amounts: sparse(vector),
      ...(settlementId === undefined ? {} : { settlementId }),
    });
    this.#absorb(outcome.levels);
  }

  /** {@link extend} for every budget; with a store the raised limit holds for every host. */
  async extendAsync(options: ExtendOptions): Promise<void> {
    if (!this.#store) return this.extend(options);
    const { kind, amount, approvedBy, reason } = validateOptions(extendSchema(), options, "options");
    await this.#defineShared();
    const level = await this.#store.extend({ budgetId: this.id, kind, amount, approvedBy, ...(reason === undefined ? {} : { reason }) });
    this.#absorb([level]);
  }

  /** Reads this budget's and its parents' current state from the store (a no-op without one). */
  async refresh(): Promise<void> {
    if (!this.#store) return;
    await this.#defineShared();
    this.#absorb(await this.#store.levels(this.#chain.map((level) => level.id)));
  }

  #localOnly(method: string): void {
    if (this.#store)
      throw new InvalidArgumentError(
        method,
        `budget "${this.id}" is shared through a ${this.#store.kind} store: use the async methods (reserveAsync, settleAsync, releaseAsync, chargeAsync, extendAsync)`,
      );
  }

  /** Creates the levels in the store, outermost first, once per budget object. */
  #defineShared(): Promise<void> {
    this.#defined ??= (async () => {
      for (const level of [...this.#chain].reverse()) {
        const limits: Amounts = {};
        for (const kind of BUDGET_KINDS) if (level.#limits[kind] !== Infinity) limits[kind] = level.#limits[kind];
        this.#absorb([await this.#store!.define({ id: level.id, ...(level.parent ? { parent: level.parent.id } : {}), limits })]);
      }
    })().catch((error: unknown) => {
      this.#defined = undefined;
      throw error;
    });
    return this.#defined;
  }

  async #reserveShared(
    options: ReserveOptions,
    at: "reserve" | "tryReserve",
  ): Promise<LeaseRecord | { refusal: { budgetId: string; kind: BudgetKind; requested: number; available: number; limit: number } }> {
    const [amounts, primary, ttlMs] = this.#request(options);
    await this.#defineShared();
    const outcome = await this.#store!.reserve({ chain: this.#chain.map((level) => level.id), amounts: sparse(amounts), ttlMs });
    this.#absorb(outcome.levels);
    if (!outcome.granted) {
      this.emit("budget-refused", { ...outcome.refusal, at });
      return { refusal: outcome.refusal };
    }
    return { id: outcome.lease.id, budgetId: this.id, amounts, primary, expiresAt: outcome.lease.expiresAt, state: "active" };
  }

  #ownShared(lease: Lease): LeaseRecord {
    if (typeof lease !== "object" || lease === null || lease.budgetId !== this.id)
      throw new LeaseNotActiveError(String(lease?.id), `not a lease of budget "${this.id}"`);
    const record = lease as LeaseRecord;
    if (record.state === "settled" || record.state === "released") throw new LeaseNotActiveError(record.id, record.state);
    return record;
  }

  /** Takes the store's view of levels into this chain's budgets, emitting warnings and exceedances as they cross. */
  #absorb(levels: readonly BudgetLevelState[]): void {
    for (const state of levels) {
      const level = this.#chain.find((candidate) => candidate.id === state.id);
      if (!level) continue;
      for (const kind of BUDGET_KINDS) {
        level.#limits[kind] = state.limits[kind] ?? Infinity;
        level.#used[kind] = state.used[kind];
        level.#reserved[kind] = state.reserved[kind];
        level.#recheck(kind);
      }
    }
  }

  /** Extensions granted so far. */
  get extensions(): readonly { kind: BudgetKind; amount: number; approvedBy: string; reason?: string; at: number }[] {
    return this.#extensions;
  }

  /**
   * Context read, pre-execution: is a resolved scope (or a token count) within the context-read
   * budget and the session total? When not, the message says what to narrow.
   */
  checkContext(scopeOrTokens: number | Pick<ResolvedScope, "totals" | "largest">): ContextCheck {
    const tokens = typeof scopeOrTokens === "number" ? scopeOrTokens : scopeOrTokens?.totals?.tokens;
    if (typeof tokens !== "number" || !(tokens >= 0)) throw new InvalidArgumentError("scope", "expected a ResolvedScope or a token count");
    const context = this.available("contextRead");
    const session = this.available("sessionTotal");
    const available = Math.min(context, session);
    if (tokens <= available) return { allowed: true, tokens, available };
    const reason = tokens > context ? "context-read" : "session-total";
    const kind = reason === "context-read" ? "contextRead" : "sessionTotal";
    const kindAvailable = reason === "context-read" ? context : session;
    const limiting = this.#chain.find((level) => level.#limits[kind] - level.#used[kind] - level.#reserved[kind] <= kindAvailable) ?? this;
    this.emit("budget-refused", {
      budgetId: limiting.id,
      kind,
      at: "checkContext",
      requested: tokens,
      available: kindAvailable,
      limit: limiting.#limits[kind],
    });
    const hotspots =
      typeof scopeOrTokens === "number"
        ? []
        : scopeOrTokens.largest(3).directories.map((spot) => `${spot.repo}/${spot.path} (${spot.tokens.toLocaleString("en-US")} tokens)`);
    const message =
      `context of ${formatAmount("contextRead", tokens)} is over the ${reason === "context-read" ? "context-read budget" : "session total"} (${formatAmount("contextRead", available)} available): narrow the scope` +
      (hotspots.length > 0 ? `; largest directories: ${hotspots.join(", ")}` : "") +
      " or raise the limit";
    return { allowed: false, tokens, available, reason, message };
  }

  /**
   * Tool calls, per invocation: reserves the call's input, or refuses with a message that can go
   * back to the model instead of a crash. Settle the lease with the tool's input and output tokens.
   */
  beforeToolCall({ tool, inputTokens }: { tool: string; inputTokens: number }): ToolCallDecision {
    this.#localOnly("beforeToolCall");
    if (typeof tool !== "string" || tool === "") throw new InvalidArgumentError("tool", "expected the tool's name");
    if (!(inputTokens >= 0)) throw new InvalidArgumentError("inputTokens", `expected a non-negative token count, got ${inputTokens}`);
    const [amounts] = this.#amounts("toolCalls", inputTokens);
    const refusal = this.#refusal(amounts, "beforeToolCall", "toolCalls");
    if (!refusal) return { allowed: true, lease: this.#hold(amounts, "toolCalls") };
    const reason = refusal.kind === "sessionTotal" ? "session-total" : refusal.kind === "usd" ? "usd" : "tool-calls";
    const spent = refusal.level.#used[refusal.kind];
    const unpriced = refusal.level.#unpricedDetail(refusal.kind);
    const message = unpriced
      ? `The dollar budget cannot be checked: ${unpriced}. Do not call ${tool}; write a short summary of what is done and what is left.`
      : reason === "tool-calls" && spent + refusal.level.#reserved.toolCalls < refusal.limit
        ? // Not spent: this one call does not fit. Say what it needs, and what is left.
          `The tool budget cannot take this ${tool} call: it needs ${formatAmount("toolCalls", inputTokens)} and ${formatAmount("toolCalls", refusal.available)} of ${formatAmount("toolCalls", refusal.limit)} are left (${formatAmount("toolCalls", spent)} spent). Use a smaller input, or finish the task with what you have and say what is left.`
        : reason === "tool-calls"
          ? `Tool budget exhausted: ${formatAmount("toolCalls", spent)} of ${formatAmount("toolCalls", refusal.limit)} spent on tool calls. Do not call ${tool} or any other tool again; finish the task with what you have and say what is left.`
          : `The session budget is spent (${formatAmount(refusal.kind, spent)} of ${formatAmount(refusal.kind, refusal.limit)}). Do not call ${tool}; write a short summary of what is done and what is left for a handover.`;
    return { allowed: false, reason, message };
  }

  /**
   * Generation, mid-execution: counts output tokens as deltas arrive and stops at the
   * generation limit or the session total, aborting upstream and keeping the partial text.
   * Local counts are booked when the stream ends; `reconcile` replaces them with the
   * provider's reported usage. An abort through `abortSignal` (also while waiting for the next
   * delta) books what arrived, cancels upstream and throws `AbortedError`, as every bulkhead
   * operation does (docs/cancellation.md).
   */
  async meterStream(
    stream: AsyncIterable<StreamChunk>,
    { counter, abortController, abortSignal, lease }: MeterStreamOptions = {},
  ): Promise<MeterResult> {
    if (!stream || typeof (stream as AsyncIterable<StreamChunk>)[Symbol.asyncIterator] !== "function") {
      throw new InvalidArgumentError("stream", "expected an async iterable of text chunks");
    }
    this.#localOnly("meterStream");
    const ownCounter = counter ? undefined : createTokenCounter({ encoding: "o200k_base" });
    const count = counter ?? ownCounter!;
    const meter = lease ? this.#own(lease, false) : this.#hold(vector(), "generation");
    let held = meter.amounts.generation;
    let text = "";
    let outputTokens = 0;
    let stoppedBy: MeterResult["stoppedBy"] = null;
    let aborted = false;
    const iterator = stream[Symbol.asyncIterator]();
    // The caller's signal, merged once: a stalled stream is left as soon as it fires, and the
    // listener goes with the deadline when the stream ends.
    using deadline = createDeadline({ abortSignal });
    // One turn of the event loop late, so a delta already on its way when the abort came is
    // still read and booked (it was generated); a stream that stalls is left right after.
    const abortedWait = new Promise<typeof ABORTED>((resolve) => {
      deadline.signal.addEventListener("abort", () => setImmediate(() => resolve(ABORTED)), { once: true });
    });
    try {
      for (;;) {
        if (deadline.signal.aborted) {
          aborted = true;
          break;
        }
        const pending = iterator.next();
        const next = await Promise.race([pending, abortedWait]);
        if (next === ABORTED) {
          // The abandoned read may still fail when the upstream is canceled: nobody waits for it.
          pending.catch(() => undefined);
          aborted = true;
          break;
        }
        if (next.done) break;
        const chunk = next.value;
        const delta = typeof chunk === "string" ? chunk : (chunk.text ?? chunk.delta ?? chunk.textDelta ?? "");
        if (delta === "") continue;
        outputTokens += await count.count(delta);
        if (deadline.signal.aborted) {
          // Aborted while this delta was on its way: it was generated, so it is booked, not kept.
          aborted = true;
          break;
        }
        if (outputTokens > held) {
          const extra = vector(0, outputTokens - held, 0, outputTokens - held);
          const refusal = this.#refusal(extra, "meterStream");
          if (refusal) {
            stoppedBy = refusal.kind === "sessionTotal" ? "session-total" : "generation";
            break;
          }
          this.#grow(meter, extra);
          held = outputTokens;
        }
        text += delta;
      }
    } catch (error) {
      // The stream failed (an SDK aborted it upstream, the connection broke): what arrived was
      // generated, so it is booked now instead of holding the reservation until the lease expires.
      this.settle({ lease: meter, spent: { generation: outputTokens } });
      throw error;
    } finally {
      if (stoppedBy !== null) {
        abortController?.abort(new Error(`stopped by the ${stoppedBy} budget`));
        await iterator.return?.().catch(() => undefined);
      } else if (aborted) {
        abortController?.abort(deadline.signal.reason);
        // Not awaited: a generator's return() waits for the read still pending on a stalled stream.
        void iterator.return?.().catch(() => undefined);
      }
      ownCounter?.dispose();
    }
    this.settle({ lease: meter, spent: { generation: outputTokens } });
    if (aborted) throw new AbortedError("meterStream", deadline.signal.reason);
    let reconciled = false;
    return {
      text,
      stoppedBy,
      outputTokens,
      reconcile: (usage, { model }: BookOptions = {}) => {
        if (reconciled) throw new InvalidArgumentError("reconcile", "this stream was already reconciled");
        for (const field of ["inputTokens", "outputTokens"] as const) {
          const value = (usage as Partial<Usage> | undefined)?.[field];
          if (!(typeof value === "number" && value >= 0 && Number.isFinite(value)))
            throw new InvalidArgumentError("usage", `${field} must be a non-negative number, got ${String(value)}`);
        }
        reconciled = true;
        const difference = usage.outputTokens - outputTokens;
        const [usd, unpriced] = this.#price(usage, model);
        this.#spend(vector(usage.inputTokens, difference, 0, usage.inputTokens + difference, usd), "charge", undefined, unpriced);
      },
    };
  }

  /** A plain summary, for logs and `--json`. */
  snapshot(): {
    id: string;
    limits: BudgetLimits;
    used: Record<BudgetKind, number>;
    reserved: Record<BudgetKind, number>;
    exhausted: boolean;
    activeLeases: number;
  } {
    this.#sweep();
    const limits: BudgetLimits = {};
    for (const kind of BUDGET_KINDS) if (this.#limits[kind] !== Infinity) limits[kind] = this.#limits[kind];
    return {
      id: this.id,
      limits,
      used: { ...this.#used },
      reserved: { ...this.#reserved },
      exhausted: this.exhausted,
      activeLeases: this.#leases.size,
    };
  }

  /** Applies a ledger event during replay (`restoreBudget`). */
  #replay(event: LedgerEvent): void {
    if (event.type === "extend") {
      if (event.budget === this.id && this.#limits[event.kind] !== Infinity) {
        this.#applyExtension({
          kind: event.kind,
          amount: event.amount,
          approvedBy: event.approvedBy,
          at: event.at,
          ...(event.reason === undefined ? {} : { reason: event.reason }),
        });
      }
      return;
    }
    if ((event.type === "settle" || event.type === "charge") && event.chain.includes(this.id)) {
      const amounts = vector();
      for (const kind of BUDGET_KINDS) amounts[kind] = event.amounts[kind] ?? 0;
      addInto(this.#used, amounts);
      if (event.unpriced !== undefined) this.#unpriced.add(event.unpriced);
      if (event.resolvesUnpriced === true) this.#unpriced.clear();
      this.#recheckAll(amounts);
    }
  }

  /** Why a usd refusal happened when it is the unknown price, not the spend. */
  #unpricedDetail(kind: BudgetKind): string | undefined {
    if (kind !== "usd" || this.#unpriced.size === 0) return undefined;
    return `budget "${this.id}" booked usage of ${[...this.#unpriced].map((model) => `"${model}"`).join(", ")} that no price is known for, so its usd limit of ${formatAmount("usd", this.#limits.usd)} fails closed ($${this.#used.usd.toFixed(4)} priced so far): add prices for the model, or book the dollars with bookUnpriced(usd)`;
  }

  #markUnpriced(model: string | undefined, resolves: boolean): void {
    for (const level of this.#chain) {
      if (model !== undefined) level.#unpriced.add(model);
      if (resolves) level.#unpriced.clear();
    }
  }

  #applyExtension(extension: { kind: BudgetKind; amount: number; approvedBy: string; reason?: string; at: number }): void {
    this.#limits[extension.kind] += extension.amount;
    this.#extensions.push(extension);
    this.#recheck(extension.kind);
  }

  /** Validates a reservation request: its amounts, its primary kind and its time to live. */
  #request(options: ReserveOptions): [Vector, BudgetKind, number] {
    if (typeof options !== "object" || options === null || typeof options.amounts !== "object" || options.amounts === null)
      throw new InvalidArgumentError(
        "options.amounts",
        `expected reserve({ amounts: { kind: estimate }, ttlMs? }), e.g. { amounts: { generation: 4_096 } }, got ${typeof options === "object" && options !== null ? "no amounts" : JSON.stringify(options)}`,
      );
    const { ttlMs = this.#leaseTtlMs } = options;
    if (!(typeof ttlMs === "number" && ttlMs > 0 && Number.isFinite(ttlMs)))
      throw new InvalidArgumentError("options.ttlMs", `expected a positive duration, got ${String(ttlMs)}`);
    const [amounts, primary] = this.#amounts(options.amounts, undefined);
    return [amounts, primary, ttlMs];
  }

  /** Validates and turns `(kind, estimate)` or `{ kind: amount }` into a vector; token kinds also count on the session total. */
  #amounts(kindOrAmounts: BudgetKind | Amounts, estimate: number | undefined): [Vector, BudgetKind] {
    const amounts = vector();
    let primary: BudgetKind | undefined;
    if (typeof kindOrAmounts === "string") {
      if (!(kindOrAmounts in amounts))
        throw new InvalidArgumentError("kind", `unknown budget kind "${kindOrAmounts}": use ${BUDGET_KINDS.join(", ")}`);
      if (typeof estimate !== "number" || !(estimate >= 0) || estimate === Infinity) {
        throw new InvalidArgumentError("estimate", `expected a non-negative number, got ${JSON.stringify(estimate)}`);
      }
      amounts[kindOrAmounts] = estimate;
      primary = kindOrAmounts;
    } else {
      if (typeof kindOrAmounts !== "object" || kindOrAmounts === null)
        throw new InvalidArgumentError("amounts", "expected a kind and an estimate, or { kind: amount }");
      for (const [kind, amount] of Object.entries(kindOrAmounts)) {
        if (!BUDGET_KINDS.includes(kind as BudgetKind))
          throw new InvalidArgumentError("options.amounts", `unknown budget kind "${kind}": use ${BUDGET_KINDS.join(", ")}`);
        if (typeof amount !== "number" || !(amount >= 0) || amount === Infinity) {
          throw new InvalidArgumentError("options.amounts", `${kind} must be a non-negative number, got ${JSON.stringify(amount)}`);
        }
        amounts[kind as BudgetKind] = amount;
        if (kind !== "sessionTotal") primary ??= kind as BudgetKind;
      }
      if (kindOrAmounts.sessionTotal !== undefined) return [amounts, primary ?? "sessionTotal"];
    }
    if (primary !== "sessionTotal") amounts.sessionTotal += amounts.contextRead + amounts.generation + amounts.toolCalls;
    return [amounts, primary ?? "sessionTotal"];
  }

  /** The first level and kind the amounts do not fit in; `block` also refuses that kind once it is spent. */
  #refusal(
    amounts: Vector,
    at: BudgetEvents["budget-refused"]["at"],
    block?: BudgetKind,
  ): { level: Budget; kind: BudgetKind; available: number; limit: number } | undefined {
    const refused = this.#findRefusal(amounts, block);
    if (refused)
      this.emit("budget-refused", {
        budgetId: refused.level.id,
        kind: refused.kind,
        at,
        requested: amounts[refused.kind],
        available: refused.available,
        limit: refused.limit,
      });
    return refused;
  }

  #findRefusal(amounts: Vector, block?: BudgetKind): { level: Budget; kind: BudgetKind; available: number; limit: number } | undefined {
    for (const level of this.#chain) {
      level.#sweep();
      for (const kind of BUDGET_KINDS) {
        const limit = level.#limits[kind];
        if (limit === Infinity) continue;
        const amount = amounts[kind];
        // Session total and dollars are known late (dollars only after a call): once reached, nothing more starts.
        // Dollars that could not be priced are unknown, not zero: a usd limit fails closed.
        const exhausted =
          (kind === "sessionTotal" || kind === "usd") && (level.#exceeded.has(kind) || (kind === "usd" && level.#unpriced.size > 0));
        if (amount === 0 && !exhausted && kind !== block) continue;
        const available = limit - level.#used[kind] - level.#reserved[kind];
        if (exhausted || amount > available || (kind === block && available <= 0))
          return { level, kind, available: Math.max(0, available), limit };
      }
    }
    return undefined;
  }

  #hold(amounts: Vector, primary: BudgetKind, ttlMs = this.#leaseTtlMs): LeaseRecord {
    const expiresAt = this.#now() + ttlMs;
    const record: LeaseRecord = { id: `${this.id}#${++this.#nextLease}`, budgetId: this.id, amounts, primary, expiresAt, state: "active" };
    for (const level of this.#chain) addInto(level.#reserved, amounts);
    this.#leases.set(record.id, record);
    if (expiresAt < this.#sweepAt) this.#sweepAt = expiresAt;
    return record;
  }

  #grow(record: LeaseRecord, extra: Vector): void {
    this.#sweep();
    // A lease that expired while its stream ran gave its hold back: growing it would hold
    // tokens that no settlement ever returns. Its spend is still booked when it settles.
    if (record.state !== "active") return;
    addInto(record.amounts, extra);
    for (const level of this.#chain) addInto(level.#reserved, extra);
  }

  #unhold(record: LeaseRecord): void {
    for (const level of this.#chain) addInto(level.#reserved, record.amounts, -1);
    this.#leases.delete(record.id);
  }

  #own(lease: Lease, allowExpired: boolean): LeaseRecord {
    if (typeof lease !== "object" || lease === null || lease.budgetId !== this.id) {
      throw new LeaseNotActiveError(String(lease?.id), `not a lease of budget "${this.id}"`);
    }
    const record = lease as LeaseRecord;
    this.#sweep();
    if (record.state === "active" || (allowExpired && record.state === "expired")) return record;
    throw new LeaseNotActiveError(record.id, record.state);
  }

  #actual(record: LeaseRecord, actual: number | Usage | Amounts, model: string | undefined): [Vector, string | undefined] {
    if (typeof actual === "number") {
      if (!(actual >= 0) || actual === Infinity)
        throw new InvalidArgumentError("options.spent", `expected a non-negative number, got ${actual}`);
      return [this.#amounts(record.primary, actual)[0], undefined];
    }
    if (typeof actual !== "object" || actual === null)
      throw new InvalidArgumentError("options.spent", "expected a number, a Usage or { kind: amount }");
    if ("inputTokens" in actual && "outputTokens" in actual)
      return this.#fromUsage(actual as Usage, record.primary === "toolCalls" ? "toolCalls" : "generation", model);
    return [this.#amounts(actual as Amounts, undefined)[0], undefined];
  }

  #fromUsage(usage: Usage, as: "generation" | "toolCalls", model: string | undefined): [Vector, string | undefined] {
    for (const field of ["inputTokens", "outputTokens"] as const) {
      if (!(usage[field] >= 0) || !Number.isFinite(usage[field]))
        throw new InvalidArgumentError("usage", `${field} must be a non-negative number, got ${usage[field]}`);
    }
    const total = usage.inputTokens + usage.outputTokens;
    const [usd, unpriced] = this.#price(usage, model);
    return [as === "toolCalls" ? vector(0, 0, total, total, usd) : vector(usage.inputTokens, usage.outputTokens, 0, total, usd), unpriced];
  }

  /**
   * The dollars of a usage, priced as `model` (or the budget's pricing model); 0 without either.
   * An unknown model never throws here, after the call was paid: the dollars are unknown, the
   * model is returned so the booking marks the budget unpriced.
   */
  #price(usage: Usage, model = this.#pricing?.model): [number, string | undefined] {
    if (model === undefined) return [0, undefined];
    try {
      return [priceUsage(usage, { model, prices: this.#pricing?.prices ?? [], at: new Date(this.#now()) }).usd, undefined];
    } catch (error) {
      if (!UnknownModelError.isInstance(error)) throw error;
      this.emit("price-unknown", { budgetId: this.id, model, usage });
      return [0, model];
    }
  }

  #spend(amounts: Vector, type: "settle" | "charge", lease?: string, unpriced?: string, resolvesUnpriced = false): void {
    for (const level of this.#chain) addInto(level.#used, amounts);
    this.#markUnpriced(unpriced, resolvesUnpriced);
    this.#ledger?.append({
      type,
      at: this.#now(),
      chain: this.#chain.map((level) => level.id),
      amounts: sparse(amounts),
      ...(lease === undefined ? {} : { lease }),
      ...(unpriced === undefined ? {} : { unpriced }),
      ...(resolvesUnpriced ? { resolvesUnpriced } : {}),
    });
    for (const level of this.#chain) level.#recheckAll(amounts);
  }

  #recheckAll(amounts: Vector): void {
    if (amounts.contextRead !== 0) this.#recheck("contextRead");
    if (amounts.generation !== 0) this.#recheck("generation");
    if (amounts.toolCalls !== 0) this.#recheck("toolCalls");
    if (amounts.sessionTotal !== 0) this.#recheck("sessionTotal");
    if (amounts.usd !== 0) this.#recheck("usd");
  }

  /** Emits warnings and exceedances once per crossing; an extension re-arms them. */
  #recheck(kind: BudgetKind): void {
    const limit = this.#limits[kind];
    if (limit === Infinity) return;
    const used = this.#used[kind];
    if (used < limit * this.#warningRatio) this.#warned.delete(kind);
    else if (!this.#warned.has(kind)) {
      this.#warned.add(kind);
      this.emit("budget-warning", { budgetId: this.id, kind, used, limit, ratio: limit === 0 ? 1 : used / limit });
    }
    if (used < limit) this.#exceeded.delete(kind);
    else if (!this.#exceeded.has(kind)) {
      this.#exceeded.add(kind);
      this.emit("budget-exceeded", { budgetId: this.id, kind, action: BUDGET_ACTIONS[kind], used, limit });
      if (kind === "sessionTotal") this.emit("handover-required", { budgetId: this.id, used, limit });
    }
  }

  /** Releases expired leases; skipped until the earliest expiry is due. */
  #sweep(): void {
    if (this.#sweepAt === Infinity) return;
    const now = this.#now();
    if (now < this.#sweepAt) return;
    let next = Infinity;
    for (const record of this.#leases.values()) {
      if (record.expiresAt <= now) {
        this.#unhold(record);
        record.state = "expired";
      } else if (record.expiresAt < next) next = record.expiresAt;
    }
    this.#sweepAt = next;
  }
}

/**
 * Creates a budget. Limits are per kind, in tokens (`usd` in dollars).
 *
 * @example
 * const session = createBudget({ id: "session", limits: { sessionTotal: 100_000 } });
 * const task = createBudget({ id: "task", parent: session, limits: { contextRead: 50_000, generation: 10_000, toolCalls: 20_000 } });
 * const lease = task.reserve({ contextRead: 1_200, generation: 4_096 });
 * task.settle({ lease, spent: usage });
 */
export function createBudget(options: CreateBudgetOptions): Budget {
  return construct(options);
}

/** Rebuilds a budget from a ledger: its spend and extensions, exactly as recorded. */
export async function restoreBudget(options: CreateBudgetOptions & RestoreOptions): Promise<Budget> {
  // Built (and validated) before the ledger is read: bad options fail without any I/O.
  const budget = construct(options);
  if (options.ledger === undefined) throw new InvalidArgumentError("options.ledger", "expected the Ledger to restore from");
  const { events, corruptLines, tornTail } = await options.ledger.read();
  if (corruptLines > 0 || tornTail) options.onSkipped?.({ corruptLines, tornTail });
  for (const event of events) replay(budget, event);
  return budget;
}

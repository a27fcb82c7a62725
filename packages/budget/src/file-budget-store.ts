import { randomUUID } from "node:crypto";
import { mkdir, open, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import {
  BUDGET_KINDS,
  budgetVector,
  findBudgetRefusal,
  InvalidArgumentError,
  withFileLock,
  type BudgetAmounts,
  type BudgetKind,
  type BudgetLevelState,
  type BudgetStore,
  type BudgetStoreEvent,
  type SettleOutcome,
} from "@bulkhead/core";

type Vector = Record<BudgetKind, number>;
interface Level {
  id: string;
  parent?: string;
  limits: BudgetAmounts;
  used: Vector;
  reserved: Vector;
}
interface LeaseHold {
  chain: string[];
  amounts: Vector;
  expiresAt: number;
  active: boolean;
}

/** One line of the store's log; the state is the replay of every line, so a crash never leaves half of a change. */
type Operation =
  | { op: "define"; id: string; parent?: string; limits: BudgetAmounts }
  | { op: "reserve"; lease: string; chain: string[]; amounts: BudgetAmounts; expiresAt: number }
  | { op: "settle"; lease: string; settlement: string; at: number; amounts: BudgetAmounts }
  | { op: "charge"; chain: string[]; settlement?: string; at: number; amounts: BudgetAmounts }
  | { op: "release"; lease: string }
  | { op: "expire"; leases: string[] }
  | { op: "extend"; budget: string; kind: BudgetKind; amount: number; approvedBy: string; reason?: string; at: number };

class BudgetState {
  readonly levels = new Map<string, Level>();
  readonly leases = new Map<string, LeaseHold>();
  readonly settlements = new Set<string>();
  readonly events: BudgetStoreEvent[] = [];

  apply(operation: Operation): void {
    switch (operation.op) {
      case "define":
        if (!this.levels.has(operation.id))
          this.levels.set(operation.id, {
            id: operation.id,
            ...(operation.parent === undefined ? {} : { parent: operation.parent }),
            limits: { ...operation.limits },
            used: budgetVector(),
            reserved: budgetVector(),
          });
        return;
      case "reserve": {
        const amounts = budgetVector(operation.amounts);
        this.leases.set(operation.lease, { chain: operation.chain, amounts, expiresAt: operation.expiresAt, active: true });
        this.#add(operation.chain, "reserved", amounts, 1);
        return;
      }
      case "settle": {
        const lease = this.leases.get(operation.lease)!;
        if (lease.active) this.#add(lease.chain, "reserved", lease.amounts, -1);
        this.leases.delete(operation.lease);
        this.#book("settle", lease.chain, operation.amounts, operation.at, operation.settlement, operation.lease);
        return;
      }
      case "charge":
        this.#book("charge", operation.chain, operation.amounts, operation.at, operation.settlement);
        return;
      case "release": {
        const lease = this.leases.get(operation.lease)!;
        if (lease.active) this.#add(lease.chain, "reserved", lease.amounts, -1);
        this.leases.delete(operation.lease);
        return;
      }
      case "expire":
        for (const id of operation.leases) {
          const lease = this.leases.get(id);
          if (!lease?.active) continue;
          lease.active = false;
          this.#add(lease.chain, "reserved", lease.amounts, -1);
        }
        return;
      case "extend": {
        const level = this.levels.get(operation.budget)!;
        level.limits = { ...level.limits, [operation.kind]: (level.limits[operation.kind] ?? 0) + operation.amount };
        const { op: _op, ...event } = operation;
        this.events.push({ type: "extend", ...event });
        return;
      }
    }
  }

  #book(type: "settle" | "charge", chain: string[], amounts: BudgetAmounts, at: number, settlement?: string, lease?: string): void {
    if (settlement !== undefined) this.settlements.add(settlement);
    this.#add(chain, "used", budgetVector(amounts), 1);
    this.events.push({
      type,
      at,
      chain: [...chain],
      amounts: { ...amounts },
      ...(lease === undefined ? {} : { lease }),
      ...(settlement === undefined ? {} : { settlement }),
    });
  }

  #add(chain: readonly string[], field: "used" | "reserved", amounts: Vector, sign: 1 | -1): void {
    for (const id of chain) {
      const level = this.levels.get(id);
      if (!level) continue;
      for (const kind of BUDGET_KINDS) level[field][kind] += sign * amounts[kind];
    }
  }

  view(id: string): BudgetLevelState {
    const level = this.levels.get(id);
    if (!level) throw new InvalidArgumentError("budgetId", `no budget level "${id}" in this store: define it first (createBudget does)`);
    return structuredClone(level);
  }

  expired(now: number): string[] {
    const ids: string[] = [];
    for (const [id, lease] of this.leases) if (lease.active && lease.expiresAt <= now) ids.push(id);
    return ids;
  }
}

/** A transaction: read the state, decide, append operations (applied as they are appended). */
type Transact = <TResult>(work: (state: BudgetState, append: (operation: Operation) => void) => TResult) => Promise<TResult>;

function createLogStore(kind: string, transact: Transact, now: () => number, close: () => Promise<void>): BudgetStore {
  const sweepIn = (state: BudgetState, append: (operation: Operation) => void): number => {
    const leases = state.expired(now());
    if (leases.length > 0) append({ op: "expire", leases });
    return leases.length;
  };
  const outcome = (state: BudgetState, status: SettleOutcome["status"], chain: readonly string[]): SettleOutcome => ({
    status,
    levels: chain.filter((id) => state.levels.has(id)).map((id) => state.view(id)),
  });
  return {
    kind,
    define: ({ id, parent, limits }) =>
      transact((state, append) => {
        if (!state.levels.has(id)) append({ op: "define", id, ...(parent === undefined ? {} : { parent }), limits: { ...limits } });
        return state.view(id);
      }),
    reserve: ({ chain, amounts, ttlMs }) =>
      transact((state, append) => {
        sweepIn(state, append);
        const levels = chain.map((id) => state.view(id));
        const refusal = findBudgetRefusal(levels, amounts);
        if (refusal) return { granted: false as const, refusal, levels };
        const lease = { id: `${chain[0]}#${randomUUID()}`, chain: [...chain], amounts: { ...amounts }, expiresAt: now() + ttlMs };
        append({ op: "reserve", lease: lease.id, chain: lease.chain, amounts: lease.amounts, expiresAt: lease.expiresAt });
        return { granted: true as const, lease, levels: chain.map((id) => state.view(id)) };
      }),
    settle: ({ leaseId, amounts, settlementId = leaseId }) =>
      transact((state, append) => {
        sweepIn(state, append);
        const lease = state.leases.get(leaseId);
        if (state.settlements.has(settlementId)) return outcome(state, "duplicate", lease?.chain ?? []);
        if (!lease) return outcome(state, "unknown-lease", []);
        append({ op: "settle", lease: leaseId, settlement: settlementId, at: now(), amounts: { ...amounts } });
        return outcome(state, "applied", lease.chain);
      }),
    charge: ({ chain, amounts, settlementId }) =>
      transact((state, append) => {
        for (const id of chain) state.view(id);
        if (settlementId !== undefined && state.settlements.has(settlementId)) return outcome(state, "duplicate", chain);
        append({
          op: "charge",
          chain: [...chain],
          ...(settlementId === undefined ? {} : { settlement: settlementId }),
          at: now(),
          amounts: { ...amounts },
        });
        return outcome(state, "applied", chain);
      }),
    release: (leaseId) =>
      transact((state, append) => {
        sweepIn(state, append);
        const lease = state.leases.get(leaseId);
        if (!lease?.active) return false;
        append({ op: "release", lease: leaseId });
        return true;
      }),
    extend: ({ budgetId, kind, amount, approvedBy, reason }) =>
      transact((state, append) => {
        if (state.view(budgetId).limits[kind] === undefined)
          throw new InvalidArgumentError("budgetId", `budget "${budgetId}" has no ${kind} limit to extend`);
        append({ op: "extend", budget: budgetId, kind, amount, approvedBy, ...(reason === undefined ? {} : { reason }), at: now() });
        return state.view(budgetId);
      }),
    levels: (ids) =>
      transact((state, append) => {
        sweepIn(state, append);
        return ids.map((id) => state.view(id));
      }),
    sweep: () => transact(sweepIn),
    ledger: () => transact((state) => structuredClone(state.events)),
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * A budget store in memory, for tests and one process. Shares nothing beyond the process.
 *
 * @example
 * const store = createMemoryBudgetStore();
 * const budget = createBudget({ id: "session", limits: { sessionTotal: 100_000 }, store });
 */
export function createMemoryBudgetStore({ now = Date.now }: { now?: () => number } = {}): BudgetStore {
  const state = new BudgetState();
  let tail: Promise<unknown> = Promise.resolve();
  const transact: Transact = (work) => {
    const run = tail.then(() => work(state, (operation) => state.apply(operation)));
    tail = run.catch(() => undefined);
    return run;
  };
  return createLogStore("memory", transact, now, async () => {});
}

/**
 * A budget store in a directory, shared by every process on one host: one append-only log
 * (`budget.log`, JSON lines) of every change, taken under a lock beside it and fsynced; each
 * process replays the lines it has not seen before deciding. A crash mid-write leaves a torn
 * last line, which is skipped. For several hosts use the PostgreSQL store (docs/scaling.md).
 *
 * @example
 * const store = createFileBudgetStore({ dir: ".bulkhead/budgets" });
 * const team = createBudget({ id: "team", limits: { sessionTotal: 5_000_000 }, store });
 */
export function createFileBudgetStore({ dir, now = Date.now }: { dir: string; now?: () => number }): BudgetStore {
  if (typeof dir !== "string" || dir === "") throw new InvalidArgumentError("options.dir", "expected the store's directory");
  const path = join(dir, "budget.log");
  let state = new BudgetState();
  let offset = 0;
  let handle: Promise<FileHandle> | undefined;
  let closed = false;
  let local: Promise<unknown> = Promise.resolve();

  const catchUp = async (file: FileHandle): Promise<void> => {
    const { size } = await file.stat();
    if (size <= offset) return;
    const buffer = Buffer.alloc(size - offset);
    await file.read(buffer, 0, buffer.length, offset);
    const end = buffer.lastIndexOf(0x0a);
    if (end < 0) return;
    for (const line of buffer.subarray(0, end).toString("utf8").split("\n")) {
      if (line === "") continue;
      let operation: Operation;
      try {
        operation = JSON.parse(line) as Operation;
      } catch {
        // A line torn by a writer that crashed; the next writer started on a new line after it.
        continue;
      }
      state.apply(operation);
    }
    offset += end + 1;
  };

  const transact: Transact = (work) => {
    if (closed) return Promise.reject(new InvalidArgumentError("store", `the budget store in ${dir} is closed`));
    const run = local.then(async () => {
      handle ??= mkdir(dir, { recursive: true }).then(() => open(path, "a+"));
      const file = await handle;
      return withFileLock(join(dir, "budget.lock"), async () => {
        await catchUp(file);
        const lines: Operation[] = [];
        // Applied at once, so the work sees its own changes; a failed write rebuilds the state from the file.
        let result: ReturnType<typeof work>;
        try {
          result = work(state, (operation) => {
            lines.push(operation);
            state.apply(operation);
          });
        } catch (error) {
          if (lines.length > 0) [state, offset] = [new BudgetState(), 0];
          throw error;
        }
        if (lines.length === 0) return result;
        try {
          const { size } = await file.stat();
          const prefix = size > offset ? "\n" : ""; // a torn tail: keep it one skipped line
          const text = prefix + lines.map((operation) => `${JSON.stringify(operation)}\n`).join("");
          await file.appendFile(text);
          await file.datasync();
          offset = size + Buffer.byteLength(text);
        } catch (error) {
          state = new BudgetState();
          offset = 0;
          throw error;
        }
        return result;
      });
    });
    local = run.catch(() => undefined);
    return run;
  };
  return createLogStore("files", transact, now, async () => {
    if (closed) return;
    closed = true;
    await local;
    if (handle) await (await handle).close();
  });
}

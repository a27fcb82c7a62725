/**
 * Every error code bulkhead throws. The union type {@link BulkheadErrorCode} is derived from it,
 * so a `switch` over `error.code` is checked for exhaustiveness.
 */
export const BULKHEAD_ERROR_CODES = {
  /** An argument failed validation; the message names the parameter and the value. */
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
  /** A task spec (`handover.yaml`) is malformed; `problems` lists every issue with its position. */
  INVALID_TASK_SPEC: "INVALID_TASK_SPEC",
  /** A resolved scope is over `max_files` or `max_tokens`, or names a path that does not exist. */
  SCOPE_LIMIT: "SCOPE_LIMIT",
  /** A path leaves its root (`..`, absolute, a symlink pointing outside). */
  PATH_OUTSIDE_ROOT: "PATH_OUTSIDE_ROOT",
  /** No proposal with this id exists in the guard's store. */
  PROPOSAL_NOT_FOUND: "PROPOSAL_NOT_FOUND",
  /** A proposal was already approved or rejected. */
  PROPOSAL_ALREADY_DECIDED: "PROPOSAL_ALREADY_DECIDED",
  /** A cross-process lock could not be taken in time. */
  LOCK_TIMEOUT: "LOCK_TIMEOUT",
  /** The operation was canceled through its `abortSignal`. */
  ABORTED: "ABORTED",
  /** Token usage is malformed: negative, not a number, or parts that exceed their total. */
  INVALID_USAGE: "INVALID_USAGE",
  /** No price or tokenizer is known for a model; never priced as zero. */
  UNKNOWN_MODEL: "UNKNOWN_MODEL",
  /** A reservation does not fit in a budget (or one of its parents). */
  BUDGET_EXCEEDED: "BUDGET_EXCEEDED",
  /** A lease was already settled or released, or belongs to another budget. */
  LEASE_NOT_ACTIVE: "LEASE_NOT_ACTIVE",
  /** A handover document is malformed. */
  INVALID_HANDOVER: "INVALID_HANDOVER",
  /** A handover was already consumed by someone else. */
  HANDOVER_CONSUMED: "HANDOVER_CONSUMED",
  /** A rendered handover is over its token bound. */
  HANDOVER_TOO_LARGE: "HANDOVER_TOO_LARGE",
  /** A project-memory entry file is malformed; the message names the file and the line. */
  INVALID_MEMORY_ENTRY: "INVALID_MEMORY_ENTRY",
  /** No project-memory entry with this id exists in the store. */
  MEMORY_ENTRY_NOT_FOUND: "MEMORY_ENTRY_NOT_FOUND",
  /** A project-memory change was refused: already decided, dropped, or accepted by its own proposer. */
  MEMORY_REFUSED: "MEMORY_REFUSED",
  /** A command run as a check failed to start or timed out. */
  COMMAND_FAILED: "COMMAND_FAILED",
  /** Another lead took over: this one's fencing token is stale, so it must not write. */
  LEAD_FENCED: "LEAD_FENCED",
  /** A git ref or the index moved, or is locked, while the lead tried to update it. */
  GIT_CONFLICT: "GIT_CONFLICT",
  /** Tasks or dependencies cannot be planned: a cycle, an unknown id, a duplicate. */
  INVALID_PLAN: "INVALID_PLAN",
  /** A work-hook claim was refused or has expired. */
  CLAIM_REFUSED: "CLAIM_REFUSED",
  /** A sandbox project config is invalid (missing repo, not a git repo, bad name, ...). */
  INVALID_PROJECT: "INVALID_PROJECT",
  /** A required device or GPU runtime is not available on this host. */
  DEVICE_UNAVAILABLE: "DEVICE_UNAVAILABLE",
  /** A sandbox session could not be created, found or used; `data.step` names where it failed. */
  SESSION_FAILED: "SESSION_FAILED",
  /** `bulkhead harvest` could not finish (the lead refused the agent's changes, ...). */
  HARVEST_FAILED: "HARVEST_FAILED",
  /** The model gateway could not start (a port or socket path in use) or was used after close. */
  GATEWAY_FAILED: "GATEWAY_FAILED",
  /** A shared store (PostgreSQL) could not be reached; nothing was granted or changed by the failed call. */
  STORE_UNAVAILABLE: "STORE_UNAVAILABLE",
} as const;

export type BulkheadErrorCode = (typeof BULKHEAD_ERROR_CODES)[keyof typeof BULKHEAD_ERROR_CODES];

const baseMarker = Symbol.for("bulkhead.error");

/**
 * The `Symbol.for` marker of an error class: `errorMarker("BudgetExceededError")` is the same
 * symbol in every copy of every bulkhead package, so two installed copies recognise each other's
 * errors. Each subclass declares its own as `static override readonly marker`.
 */
export function errorMarker(className: string): symbol {
  return Symbol.for(`bulkhead.error.${className}`);
}

export interface BulkheadErrorOptions<TData extends object = Record<string, unknown>> {
  /**
   * The underlying error, kept for debugging.
   * @default undefined
   */
  cause?: unknown;
  /**
   * Structured data that says more than the message (limits, paths, suggestions).
   * @default {}
   */
  data?: TData;
}

/**
 * The base class of every error bulkhead throws. Check with {@link BulkheadError.isInstance}
 * rather than `instanceof`, so errors from two copies of the package are still recognised.
 * `TData` types {@link BulkheadError.data} for the subclasses that carry data.
 *
 * @example
 * try { await loadTaskSpec("handover.yaml"); }
 * catch (error) { if (BulkheadError.isInstance(error)) console.error(error.code, error.message); }
 */
export class BulkheadError<TData extends object = Record<string, unknown>> extends Error {
  /**
   * This class's marker; every subclass declares its own ({@link errorMarker}), so `isInstance`
   * on a subclass matches that kind only, whichever copy of the package created the error.
   */
  static readonly marker: symbol = baseMarker;
  /** A stable code from {@link BULKHEAD_ERROR_CODES}. */
  readonly code: BulkheadErrorCode;
  /** Structured details, safe to serialise. */
  readonly data: TData;

  constructor(code: BulkheadErrorCode, message: string, options: BulkheadErrorOptions<TData> = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "BulkheadError";
    this.code = code;
    this.data = options.data ?? ({} as TData);
    // The instance carries the marker of its class and of every ancestor, so the base class and
    // each superclass recognise it too. Non-enumerable: it is not part of the serialised error.
    for (let type: unknown = new.target; typeof type === "function" && type !== Error; type = Object.getPrototypeOf(type)) {
      if (Object.hasOwn(type, "marker")) Object.defineProperty(this, (type as unknown as { marker: symbol }).marker, { value: true });
    }
  }

  /**
   * On `BulkheadError`: true for any bulkhead error, whichever copy of the package created it.
   * On a subclass (`BudgetExceededError.isInstance(error)`): true for that kind (or its
   * subclasses) only, matched by the class's own `Symbol.for` marker, so across copies too.
   */
  static isInstance<T extends abstract new (...args: never[]) => BulkheadError<object>>(this: T, value: unknown): value is InstanceType<T> {
    if (typeof value !== "object" || value === null) return false;
    // A subclass that did not declare its own marker would inherit its parent's and match every
    // sibling: it falls back to `instanceof`, which is exact (but only within one copy).
    if (!Object.hasOwn(this, "marker")) return value instanceof this;
    return (value as Record<symbol, unknown>)[(this as unknown as { marker: symbol }).marker] === true;
  }

  /** A plain object for logs and `--json` output. */
  toJSON(): { name: string; code: BulkheadErrorCode; message: string; data: TData } {
    return { name: this.name, code: this.code, message: this.message, data: this.data };
  }
}

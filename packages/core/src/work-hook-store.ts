/** A task on a work hook. */
export interface HookTask {
  id: string;
  dependsOn: string[];
  /** Anything the worker needs: a spec path, a prompt, a payload. */
  payload?: unknown;
  state: "open" | "complete" | "failed";
  attempts: number;
  result?: unknown;
  reason?: string;
}

/** A worker's hold on a task, valid until `expiresAt` unless renewed. */
export interface Claim {
  taskId: string;
  worker: string;
  /**
   * The fencing token: `renew`, `complete`, `fail` and `release` succeed only while it is the
   * task's current claim, checked in the same step as the change.
   */
  token: string;
  /**
   * The fencing token as a number, where the store hands out a sequence (PostgreSQL): a later
   * claim of the same task always has a greater one, so a resource can refuse an older holder.
   */
  fence?: number;
  expiresAt: number;
}

/**
 * Where a work hook keeps tasks and claims (seed 001, lesson 5: workers pull ready work, humans
 * stock it). Implementations: a directory on one host (`createWorkHook({ dir })` in
 * @bulkhead/git-lead), PostgreSQL for several hosts (@bulkhead/postgres). One conformance suite
 * runs against each.
 */
export interface WorkHookStore {
  /** Adds tasks (with their dependencies) atomically; ids already on the hook are refused. */
  add(tasks: readonly { id: string; dependsOn?: readonly string[]; payload?: unknown }[]): Promise<void>;
  /** Open tasks whose dependencies are complete and that nobody holds, by id. */
  ready(): Promise<HookTask[]>;
  /** Takes a ready task; exactly one of several concurrent claimers (in any process, on any host) wins. */
  claim(taskId: string, worker: string, options?: { ttlMs?: number }): Promise<Claim>;
  /**
   * Takes the first ready task (by id) that nobody holds, or returns undefined when none is ready.
   * Concurrent workers get different tasks.
   */
  claimNext?(worker: string, options?: { ttlMs?: number }): Promise<Claim | undefined>;
  /** Extends a claim; refused when it expired and someone else took the task. */
  renew(claim: Claim, options?: { ttlMs?: number }): Promise<Claim>;
  complete(claim: Claim, options?: { result?: unknown }): Promise<void>;
  /** Gives the task back as open (another attempt), recording why. */
  fail(claim: Claim, options: { reason: string; final?: boolean }): Promise<void>;
  /** Gives the task back without an attempt. */
  release(claim: Claim): Promise<void>;
  tasks(): Promise<HookTask[]>;
  /** Releases connections. Idempotent. */
  close?(): Promise<void>;
}

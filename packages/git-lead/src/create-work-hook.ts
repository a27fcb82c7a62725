import { InvalidArgumentError, validateOptions, type Claim, type HookTask, type WorkHookStore } from "@bulkhead/core";
import { z } from "zod";
import { createFileWorkHookStore, TASK_ID } from "./file-work-hook-store.js";
import { ClaimRefusedError } from "./git-lead-errors.js";
import { validateTasks } from "./plan-waves.js";

export type { Claim, HookTask };

/** Options of {@link createWorkHook}: a directory on this host, or a store every host shares. */
export type CreateWorkHookOptions =
  | {
      /** The hook's directory (created by the first `add`). */
      dir: string;
      /** How long a claim lasts unless renewed, when a call gives no `ttlMs`. @default 600_000 */
      defaultTtlMs?: number;
      /** The clock, for tests. @default Date.now */
      now?: () => number;
    }
  | {
      /** Where tasks and claims live instead: a {@link WorkHookStore} such as `createPostgresWorkHookStore`. */
      store: WorkHookStore;
    };

/** Options of {@link WorkHook.claim}. */
export interface ClaimOptions {
  /** The task to take; it must be ready (open, dependencies complete, not held). */
  taskId: string;
  /** Who takes it; recorded on the claim. */
  worker: string;
  /** How long the claim lasts unless renewed. @default the hook's `defaultTtlMs` (600_000 for a directory) */
  ttlMs?: number;
}

/** Options of {@link WorkHook.claimNext}. */
export interface ClaimNextOptions {
  /** Who takes the task. */
  worker: string;
  /** How long the claim lasts unless renewed. @default the hook's `defaultTtlMs` (600_000 for a directory) */
  ttlMs?: number;
}

/** Options of {@link WorkHook.renew}. */
export interface RenewOptions {
  /** The claim to extend: refused unless it is still the task's current claim. */
  claim: Claim;
  /** The new lifetime, from now. @default the hook's `defaultTtlMs` (600_000 for a directory) */
  ttlMs?: number;
}

/** Options of {@link WorkHook.complete}. */
export interface CompleteOptions {
  /** The current claim on the task. */
  claim: Claim;
  /** Anything to keep with the task (a commit id, a report). @default none */
  result?: unknown;
}

/** Options of {@link WorkHook.fail}. */
export interface FailOptions {
  /** The current claim on the task. */
  claim: Claim;
  /** Why it failed; kept on the task. */
  reason: string;
  /** Fail for good instead of opening the task for another attempt. @default false */
  final?: boolean;
}

/** Options of {@link WorkHook.release}. */
export interface ReleaseOptions {
  /** The current claim on the task. */
  claim: Claim;
}

/**
 * The hook (seed 001, lesson 5): workers pull ready work; humans stock it. Every method takes
 * one options object, checked up front (`InvalidArgumentError` names the bad key). Close it
 * (`await using`, or `close()`) to release the store's connections.
 */
export interface WorkHook extends AsyncDisposable {
  /** Adds tasks (with their dependencies) atomically; ids already on the hook, unknown dependencies and cycles are refused. */
  add(tasks: readonly { id: string; dependsOn?: readonly string[]; payload?: unknown }[]): Promise<void>;
  /** Open tasks whose dependencies are complete and that nobody holds, by id. */
  ready(): Promise<HookTask[]>;
  /** Takes a ready task; exactly one of several concurrent claimers wins, the others get `ClaimRefusedError`. */
  claim(options: ClaimOptions): Promise<Claim>;
  /** Takes the first ready task nobody holds, or returns undefined when none is ready. Concurrent workers get different tasks. */
  claimNext(options: ClaimNextOptions): Promise<Claim | undefined>;
  /** Extends a claim; refused (`ClaimRefusedError`) when it expired and someone else took the task. */
  renew(options: RenewOptions): Promise<Claim>;
  /** Marks the task complete; the tasks waiting for it may become ready. */
  complete(options: CompleteOptions): Promise<void>;
  /** Gives the task back as open (another attempt) or failed for good, recording why. */
  fail(options: FailOptions): Promise<void>;
  /** Gives the task back without counting an attempt. */
  release(options: ReleaseOptions): Promise<void>;
  /** Every task on the hook, by id. */
  tasks(): Promise<HookTask[]>;
  /** Releases the store's connections. Idempotent. */
  close(): Promise<void>;
}

// Built on first use, not at import: most programs that load git-lead never make a hook.
let schemas:
  | {
      options: z.ZodType<CreateWorkHookOptions>;
      claim: z.ZodType<ClaimOptions>;
      claimNext: z.ZodType<ClaimNextOptions>;
      renew: z.ZodType<RenewOptions>;
      complete: z.ZodType<CompleteOptions>;
      fail: z.ZodType<FailOptions>;
      release: z.ZodType<ReleaseOptions>;
    }
  | undefined;

function hookSchemas(): NonNullable<typeof schemas> {
  if (schemas) return schemas;
  const ttlMs = z.number().int().positive().max(2_147_483_647).optional();
  const worker = z.string().min(1, "name the worker").max(200);
  const claim = z.object({
    taskId: z.string().regex(TASK_ID, "expected a task id"),
    worker: z.string().min(1),
    token: z.string().min(1),
    expiresAt: z.number(),
    fence: z.number().optional(),
  });
  schemas = {
    options: z.union([
      z.object({
        dir: z.string().min(1, "expected the hook's directory"),
        defaultTtlMs: ttlMs,
        now: z.custom<() => number>((value) => typeof value === "function", "expected a function").optional(),
      }),
      z.object({
        store: z.custom<WorkHookStore>(
          (value) => typeof (value as WorkHookStore | undefined)?.claim === "function",
          "expected a WorkHookStore",
        ),
      }),
    ]),
    claim: z.object({ taskId: z.string().regex(TASK_ID, "expected a task id"), worker, ttlMs }),
    claimNext: z.object({ worker, ttlMs }),
    renew: z.object({ claim, ttlMs }),
    complete: z.object({ claim, result: z.unknown().optional() }),
    fail: z.object({ claim, reason: z.string().trim().min(1, "say why the task failed"), final: z.boolean().optional() }),
    release: z.object({ claim }),
  };
  return schemas;
}

/**
 * A durable work hook. With `dir`, a directory on one host: one JSON file per task, an index of
 * ready tasks, and one claim file per held task, created exclusively, so exactly one concurrent
 * claimer wins across processes without a hook-wide lock (the layout is in docs/planning.md).
 * With `store` (a {@link WorkHookStore}, e.g. `createPostgresWorkHookStore` of
 * @bulkhead/postgres), the hook lives there instead, shared by every host; tasks are still
 * checked here (ids, cycles, unknown dependencies) before they reach it. See docs/scaling.md.
 * Creating a hook touches nothing on disk.
 *
 * @example
 * await using hook = createWorkHook({ dir: ".bulkhead/hook" });
 * await hook.add([{ id: "types" }, { id: "routes", dependsOn: ["types"] }]);
 * const claim = await hook.claim({ taskId: "types", worker: "agent-1" });
 * await hook.complete({ claim, result: { sha: "abc123" } });
 */
export function createWorkHook(options: CreateWorkHookOptions): WorkHook {
  const parsed = validateOptions(hookSchemas().options, options, "options");
  if ("store" in parsed) return hookOver(parsed.store, { checkGraph: true });
  // The file store checks the whole graph itself, under its hook-wide lock.
  return hookOver(createFileWorkHookStore(parsed), { checkGraph: false });
}

/** The one public hook over a store: options checked, one object per call, ownership of the store. */
function hookOver(store: WorkHookStore, { checkGraph }: { checkGraph: boolean }): WorkHook {
  const ttl = (ttlMs: number | undefined) => (ttlMs === undefined ? {} : { ttlMs });
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= Promise.resolve(store.close?.()).then(() => undefined));
  return {
    async add(tasks) {
      if (checkGraph) {
        validateTasks([...(await store.tasks()).map((task) => ({ id: task.id, dependsOn: task.dependsOn })), ...tasks]);
        for (const task of tasks)
          if (!TASK_ID.test(task.id)) throw new InvalidArgumentError("tasks", `"${task.id}" is not a usable task id`);
      }
      await store.add(tasks);
    },
    ready: () => store.ready(),
    async claim(claimOptions) {
      const { taskId, worker, ttlMs } = validateOptions(hookSchemas().claim, claimOptions, "claim(options)");
      return store.claim(taskId, worker, ttl(ttlMs));
    },
    async claimNext(claimOptions) {
      const { worker, ttlMs } = validateOptions(hookSchemas().claimNext, claimOptions, "claimNext(options)");
      return store.claimNext ? store.claimNext(worker, ttl(ttlMs)) : claimFirstReady(store, worker, ttl(ttlMs));
    },
    async renew(renewOptions) {
      const { claim, ttlMs } = validateOptions(hookSchemas().renew, renewOptions, "renew(options)");
      return store.renew(claim, ttl(ttlMs));
    },
    async complete(completeOptions) {
      const { claim, result } = validateOptions(hookSchemas().complete, completeOptions, "complete(options)");
      return store.complete(claim, result === undefined ? {} : { result });
    },
    async fail(failOptions) {
      const { claim, reason, final } = validateOptions(hookSchemas().fail, failOptions, "fail(options)");
      return store.fail(claim, { reason, ...(final === undefined ? {} : { final }) });
    },
    async release(releaseOptions) {
      const { claim } = validateOptions(hookSchemas().release, releaseOptions, "release(options)");
      return store.release(claim);
    },
    tasks: () => store.tasks(),
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** For stores without a native `claimNext`: try the ready tasks in order; losing a race moves on. */
async function claimFirstReady(store: WorkHookStore, worker: string, options: { ttlMs?: number }): Promise<Claim | undefined> {
  for (const task of await store.ready()) {
    try {
      return await store.claim(task.id, worker, options);
    } catch (error) {
      if (!ClaimRefusedError.isInstance(error)) throw error;
    }
  }
  return undefined;
}

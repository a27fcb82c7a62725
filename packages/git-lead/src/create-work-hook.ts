import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { InvalidArgumentError, withFileLock, writeFileAtomic, type Claim, type HookTask, type WorkHookStore } from "@bulkhead/core";
import { ClaimRefusedError } from "./git-lead-errors.js";
import { validateTasks } from "./plan-waves.js";

/** The hook (seed 001, lesson 5): workers pull ready work; humans stock it. */
export interface WorkHook extends WorkHookStore {
  claimNext(worker: string, options?: { ttlMs?: number }): Promise<Claim | undefined>;
}

export type { Claim, HookTask };

const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/**
 * A durable work hook in a directory: one JSON file per task, one claim file per held task.
 * Every change (add, claim, renew, complete, fail, release) happens under one cross-process
 * lock, so exactly one concurrent claimer wins across processes; an expired claim is replaced
 * when its task is claimed again. The lock is a directory beside the tasks.
 *
 * @example
 * const hook = createWorkHook({ dir: ".bulkhead/hook" });
 * await hook.add([{ id: "types" }, { id: "routes", dependsOn: ["types"] }]);
 * const [next] = await hook.ready();
 * const claim = await hook.claim(next.id, "agent-1");
 *
 * With `store` (a {@link WorkHookStore}, e.g. `createPostgresWorkHookStore` of @bulkhead/postgres),
 * the hook lives there instead, shared by every host; tasks are still checked here (ids, cycles,
 * unknown dependencies) before they reach it. See docs/scaling.md.
 */
export function createWorkHook(options: { dir: string; defaultTtlMs?: number; now?: () => number } | { store: WorkHookStore }): WorkHook {
  if ("store" in options) return checkedHook(options.store);
  return createFileWorkHook(options);
}

/** A store behind the hook's own checks: the same task validation as the file hook. */
function checkedHook(store: WorkHookStore): WorkHook {
  if (typeof store !== "object" || store === null || typeof store.claim !== "function")
    throw new InvalidArgumentError("options.store", "expected a WorkHookStore");
  return {
    ...bind(store),
    async add(tasks) {
      validateTasks([...(await store.tasks()).map((task) => ({ id: task.id, dependsOn: task.dependsOn })), ...tasks]);
      for (const task of tasks) if (!ID.test(task.id)) throw new InvalidArgumentError("tasks", `"${task.id}" is not a usable task id`);
      await store.add(tasks);
    },
    claimNext: (worker, claimOptions) =>
      store.claimNext ? store.claimNext(worker, claimOptions) : claimFirstReady(store, worker, claimOptions),
  };
}

function bind(store: WorkHookStore): Omit<WorkHook, "add" | "claimNext"> {
  return {
    ready: () => store.ready(),
    claim: (taskId, worker, claimOptions) => store.claim(taskId, worker, claimOptions),
    renew: (claim, renewOptions) => store.renew(claim, renewOptions),
    complete: (claim, completeOptions) => store.complete(claim, completeOptions),
    fail: (claim, failOptions) => store.fail(claim, failOptions),
    release: (claim) => store.release(claim),
    tasks: () => store.tasks(),
    close: async () => store.close?.(),
  };
}

/** For stores without a native `claimNext`: try the ready tasks in order; losing a race moves on. */
async function claimFirstReady(store: WorkHookStore, worker: string, options?: { ttlMs?: number }): Promise<Claim | undefined> {
  for (const task of await store.ready()) {
    try {
      return await store.claim(task.id, worker, options);
    } catch (error) {
      if (!ClaimRefusedError.isInstance(error)) throw error;
    }
  }
  return undefined;
}

function createFileWorkHook({
  dir,
  defaultTtlMs = 600_000,
  now = Date.now,
}: {
  dir: string;
  defaultTtlMs?: number;
  now?: () => number;
}): WorkHook {
  if (typeof dir !== "string" || dir === "") throw new InvalidArgumentError("options.dir", "expected the hook's directory");
  const tasksDir = join(dir, "tasks");
  const claimsDir = join(dir, "claims");
  const locked = <TResult>(work: () => Promise<TResult>) => withFileLock(join(dir, ".lock"), work);
  const readTask = async (id: string): Promise<HookTask | undefined> => {
    const text = await readFile(join(tasksDir, `${id}.json`), "utf8").catch(() => undefined);
    return text === undefined ? undefined : (JSON.parse(text) as HookTask);
  };
  const readClaim = async (id: string): Promise<Claim | undefined> => {
    const text = await readFile(join(claimsDir, `${id}.json`), "utf8").catch(() => undefined);
    if (!text) return undefined;
    try {
      return JSON.parse(text) as Claim;
    } catch {
      return undefined;
    }
  };
  const all = async () => {
    const names = await readdir(tasksDir).catch(() => [] as string[]);
    const tasks = await Promise.all(names.filter((name) => name.endsWith(".json")).map((name) => readTask(name.slice(0, -5))));
    return tasks.filter((task): task is HookTask => task !== undefined).sort((left, right) => (left.id < right.id ? -1 : 1));
  };
  const isReady = (task: HookTask, tasks: readonly HookTask[]) =>
    task.state === "open" && task.dependsOn.every((dependency) => tasks.find((other) => other.id === dependency)?.state === "complete");
  const ownClaim = async (claim: Claim): Promise<void> => {
    const current = await readClaim(claim.taskId);
    if (!current || current.token !== claim.token)
      throw new ClaimRefusedError(`${claim.worker} no longer holds ${claim.taskId}: its claim expired and was taken, or was released`, {
        taskId: claim.taskId,
      });
    if (current.expiresAt <= now())
      throw new ClaimRefusedError(`${claim.worker}'s claim on ${claim.taskId} expired: renew claims before they run out`, {
        taskId: claim.taskId,
      });
  };
  const dropClaim = (id: string) => rm(join(claimsDir, `${id}.json`), { force: true });

  const hook: WorkHook = {
    async add(tasks) {
      validateTasks([...(await all()).map((task) => ({ id: task.id, dependsOn: task.dependsOn })), ...tasks]);
      for (const task of tasks) if (!ID.test(task.id)) throw new InvalidArgumentError("tasks", `"${task.id}" is not a usable task id`);
      await mkdir(tasksDir, { recursive: true });
      await locked(async () => {
        for (const task of tasks) {
          if (await readTask(task.id)) throw new InvalidArgumentError("tasks", `task "${task.id}" is already on the hook`);
        }
        for (const task of tasks) {
          await writeFileAtomic(
            join(tasksDir, `${task.id}.json`),
            JSON.stringify({
              id: task.id,
              dependsOn: [...(task.dependsOn ?? [])],
              ...(task.payload === undefined ? {} : { payload: task.payload }),
              state: "open",
              attempts: 0,
            } satisfies HookTask),
          );
        }
      });
    },
    async ready() {
      const tasks = await all();
      const result: HookTask[] = [];
      for (const task of tasks) {
        if (!isReady(task, tasks)) continue;
        const claim = await readClaim(task.id);
        if (!claim || claim.expiresAt <= now()) result.push(task);
      }
      return result;
    },
    async claim(taskId, worker, { ttlMs = defaultTtlMs } = {}) {
      if (!ID.test(String(taskId)) || typeof worker !== "string" || worker === "")
        throw new InvalidArgumentError("claim", "expected a task id and a worker name");
      await mkdir(claimsDir, { recursive: true });
      // Under the hook's lock, like every other change of a claim: readiness, the current claim
      // and the new one are one step, so a task completed or claimed meanwhile cannot be taken.
      return locked(async () => {
        const tasks = await all();
        const task = tasks.find((candidate) => candidate.id === taskId);
        if (!task) throw new ClaimRefusedError(`no task "${taskId}" on the hook`, { taskId });
        if (!isReady(task, tasks))
          throw new ClaimRefusedError(
            `task "${taskId}" is not ready: it is ${task.state}${task.state === "open" ? " and waits for its dependencies" : ""}`,
            { taskId },
          );
        const held = await readClaim(taskId);
        if (held && held.expiresAt > now())
          throw new ClaimRefusedError(`task "${taskId}" is held by ${held.worker} until ${new Date(held.expiresAt).toISOString()}`, {
            taskId,
            holder: held.worker,
          });
        const claim: Claim = { taskId, worker, token: randomBytes(8).toString("hex"), expiresAt: now() + ttlMs };
        await writeFileAtomic(join(claimsDir, `${taskId}.json`), JSON.stringify(claim));
        return claim;
      });
    },
    async renew(claim, { ttlMs = defaultTtlMs } = {}) {
      return locked(async () => {
        await ownClaim(claim);
        const renewed = { ...claim, expiresAt: now() + ttlMs };
        await writeFileAtomic(join(claimsDir, `${claim.taskId}.json`), JSON.stringify(renewed));
        return renewed;
      });
    },
    async complete(claim, { result } = {}) {
      await locked(async () => {
        await ownClaim(claim);
        const task = (await readTask(claim.taskId))!;
        await writeFileAtomic(
          join(tasksDir, `${task.id}.json`),
          JSON.stringify({ ...task, state: "complete", attempts: task.attempts + 1, ...(result === undefined ? {} : { result }) }),
        );
        await dropClaim(task.id);
      });
    },
    async fail(claim, { reason, final = false }) {
      await locked(async () => {
        await ownClaim(claim);
        const task = (await readTask(claim.taskId))!;
        await writeFileAtomic(
          join(tasksDir, `${task.id}.json`),
          JSON.stringify({ ...task, state: final ? "failed" : "open", attempts: task.attempts + 1, reason }),
        );
        await dropClaim(task.id);
      });
    },
    async release(claim) {
      await locked(async () => {
        await ownClaim(claim);
        await dropClaim(claim.taskId);
      });
    },
    tasks: all,
    claimNext: (worker, claimOptions) => claimFirstReady(hook, worker, claimOptions),
    close: async () => {},
  };
  return hook;
}

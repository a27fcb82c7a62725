import { randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  futimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { appendFile, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { InvalidArgumentError, withFileLock, writeFileAtomic, type Claim, type HookTask, type WorkHookStore } from "@bulkhead/core";
import { ClaimRefusedError } from "./git-lead-errors.js";
import { validateTasks } from "./plan-waves.js";

/** A task id on a hook: letters, digits and `._:-`, at most 128. */
export const TASK_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const ID = TASK_ID;

/** How long a claim file that cannot be parsed (caught mid-write, or its writer died) counts as held. */
const UNREADABLE_CLAIM_MS = 10_000;

/** A file store with its own `claimNext`, which reads the ready index instead of every task. */
export type FileWorkHookStore = WorkHookStore & Required<Pick<WorkHookStore, "claimNext">>;

/** Options of {@link createFileWorkHookStore}; checked by `createWorkHook`. */
export interface FileHookOptions {
  dir: string;
  defaultTtlMs?: number;
  now?: () => number;
}

const isMissing = (error: unknown) => (error as { code?: string }).code === "ENOENT";
const exists = (error: unknown) => (error as { code?: string }).code === "EEXIST";

/**
 * The file hook's layout, chosen so a claim touches only the claimed task:
 *   tasks/<id>.json        the task (written atomically)
 *   ready/<id>             the index of claimable tasks: open, dependencies complete, not claimed
 *   claims/<id>.json       a claim, created exclusively (`link`, which fails when one exists)
 *   dependents/<id>.list   ids of the tasks that wait for <id>, appended by `add`
 *   locks/<id>             the per-task lock for renew, complete, fail, release and takeovers
 *   ready.gen              changes whenever tasks become ready, so claimNext relists only then
 * `add` takes the hook-wide lock (it checks the whole graph for cycles); nothing else does.
 */
export function createFileWorkHookStore({ dir, defaultTtlMs = 600_000, now = Date.now }: FileHookOptions): FileWorkHookStore {
  const tasksDir = join(dir, "tasks");
  const readyDir = join(dir, "ready");
  const claimsDir = join(dir, "claims");
  const dependentsDir = join(dir, "dependents");
  const generationFile = join(dir, "ready.gen");
  const taskFile = (id: string) => join(tasksDir, `${id}.json`);
  const claimFile = (id: string) => join(claimsDir, `${id}.json`);
  const lockedTask = <TResult>(id: string, work: () => Promise<TResult>) => withFileLock(join(dir, "locks", id), work);

  const readTask = async (id: string): Promise<HookTask | undefined> => {
    const text = await readFile(taskFile(id), "utf8").catch((error: unknown) => {
      if (isMissing(error)) return undefined;
      throw error;
    });
    return text === undefined ? undefined : (JSON.parse(text) as HookTask);
  };
  const readClaim = async (id: string): Promise<Claim | undefined> => {
    const text = await readFile(claimFile(id), "utf8").catch(() => undefined);
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as Claim;
    } catch {
      // Being written, or left half-written by a claimer that died: held until it is old.
      const info = statSync(claimFile(id), { throwIfNoEntry: false });
      if (!info) return undefined;
      return { taskId: id, worker: "(a claim being written)", token: "", expiresAt: info.mtimeMs + UNREADABLE_CLAIM_MS };
    }
  };
  const all = async () => {
    const names = await readdir(tasksDir).catch(() => [] as string[]);
    const tasks = await Promise.all(names.filter((name) => name.endsWith(".json")).map((name) => readTask(name.slice(0, -5))));
    return tasks.filter((task): task is HookTask => task !== undefined).sort((left, right) => (left.id < right.id ? -1 : 1));
  };
  /** Open, with every dependency complete: reads the task's dependencies and nothing else. */
  const dependenciesComplete = async (task: HookTask) => {
    for (const dependency of task.dependsOn) if ((await readTask(dependency))?.state !== "complete") return false;
    return true;
  };
  const bumpGeneration = () => writeFileAtomic(generationFile, randomBytes(8).toString("hex"));
  const markReady = async (id: string) => {
    await writeFile(join(readyDir, id), "", { flag: "wx" }).catch((error: unknown) => {
      if (!exists(error)) throw error;
    });
  };
  const unmarkReady = (id: string) => rm(join(readyDir, id), { force: true });
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
  const dropClaim = (id: string) => rm(claimFile(id), { force: true });
  const heldBy = (taskId: string, held: Claim) =>
    new ClaimRefusedError(`task "${taskId}" is held by ${held.worker} until ${new Date(held.expiresAt).toISOString()}`, {
      taskId,
      holder: held.worker,
    });

  /**
   * Creates the claim file only if there is none (O_EXCL: one syscall decides, and a loser pays
   * nothing more). A reader can meet the file between its creation and its write: an unreadable
   * claim counts as held until it is {@link UNREADABLE_CLAIM_MS} old (a claimer that died there).
   * Synchronous: a claim is a handful of small file operations, cheaper inline than through the pool.
   */
  const createClaim = (claim: Claim): boolean => {
    let descriptor: number;
    try {
      descriptor = openSync(claimFile(claim.taskId), "wx");
    } catch (error) {
      if (exists(error)) return false;
      if (!isMissing(error)) throw error;
      mkdirSync(claimsDir, { recursive: true });
      return createClaim(claim);
    }
    try {
      writeSync(descriptor, JSON.stringify(claim));
      futimesSync(descriptor, new Date(), new Date(claim.expiresAt));
    } finally {
      closeSync(descriptor);
    }
    return true;
  };
  /**
   * Replaces a claim file atomically. Its mtime is set to the claim's expiry (as at creation), so
   * finding expired claims needs a `stat` per claim, not a read.
   */
  const writeClaim = (claim: Claim): void => {
    const aside = join(claimsDir, `.${claim.taskId}.${claim.token}.tmp`);
    writeFileSync(aside, JSON.stringify(claim));
    utimesSync(aside, new Date(), new Date(claim.expiresAt));
    renameSync(aside, claimFile(claim.taskId));
  };
  const readTaskSync = (id: string): HookTask | undefined => {
    try {
      return JSON.parse(readFileSync(taskFile(id), "utf8")) as HookTask;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  };

  /** After the claim file is ours: the task must still be open with its dependencies complete. */
  const confirm = async (claim: Claim): Promise<Claim> => {
    const task = readTaskSync(claim.taskId);
    const ready = task !== undefined && task.state === "open" && task.dependsOn.every((id) => readTaskSync(id)?.state === "complete");
    if (!ready) {
      await lockedTask(claim.taskId, async () => {
        if ((await readClaim(claim.taskId))?.token === claim.token) await dropClaim(claim.taskId);
      });
      if (!task) throw new ClaimRefusedError(`no task "${claim.taskId}" on the hook`, { taskId: claim.taskId });
      throw new ClaimRefusedError(
        `task "${claim.taskId}" is not ready: it is ${task.state}${task.state === "open" ? " and waits for its dependencies" : ""}`,
        { taskId: claim.taskId },
      );
    }
    try {
      unlinkSync(join(readyDir, claim.taskId));
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
    return claim;
  };

  const claim = async (taskId: string, worker: string, { ttlMs = defaultTtlMs }: { ttlMs?: number } = {}): Promise<Claim> => {
    const fresh = (): Claim => ({ taskId, worker, token: randomBytes(8).toString("hex"), expiresAt: now() + ttlMs });
    const first = fresh();
    if (createClaim(first)) return confirm(first);
    // A claim exists: refused while it is live; an expired one is replaced under the task's lock,
    // so two claimers cannot both replace it (a `link` cannot succeed while the file exists).
    const held = await readClaim(taskId);
    if (held && held.expiresAt > now()) throw heldBy(taskId, held);
    const replaced = await lockedTask(taskId, async () => {
      const current = await readClaim(taskId);
      if (current && current.expiresAt > now()) throw heldBy(taskId, current);
      const next = fresh();
      if (current) writeClaim(next);
      else if (!createClaim(next)) throw new ClaimRefusedError(`task "${taskId}" was claimed meanwhile`, { taskId });
      return next;
    });
    return confirm(replaced);
  };

  // claimNext's view of the ready index: the sorted listing, refreshed when ready.gen is replaced
  // (tasks became ready) or the listing runs out, so a claim costs a few file operations whatever
  // the number of tasks. A listed task claimed by someone else costs one stat.
  let listing: string[] = [];
  let position = 0;
  let generation: string | undefined;
  const claimNext = async (worker: string, claimOptions: { ttlMs?: number } = {}): Promise<Claim | undefined> => {
    const ttlMs = claimOptions.ttlMs ?? defaultTtlMs;
    const stamp = statSync(generationFile, { throwIfNoEntry: false, bigint: true });
    // Inode and nanosecond mtime: each bump renames a new file into place.
    const current = stamp ? `${stamp.ino}:${stamp.mtimeNs}` : "";
    for (let pass = 0; pass < 2; pass++) {
      if (pass === 1 || current !== generation || position >= listing.length) {
        generation = current;
        listing = existsSync(readyDir) ? readdirSync(readyDir).sort() : [];
        position = 0;
      }
      let jumps = 0;
      // Another claimer got here first: jump to a random place in the listing, so claimers
      // spread over the index instead of working through it in step (each meeting the other's
      // claims, in the same directories at the same moment). At most one jump per entry, so a
      // pass ends; what is skipped stays in the index for the next listing.
      const elsewhere = () => {
        if (jumps++ < listing.length) position = Math.floor(Math.random() * listing.length);
      };
      while (position < listing.length) {
        const id = listing[position++]!;
        if (existsSync(claimFile(id))) {
          elsewhere();
          continue;
        }
        const claim: Claim = { taskId: id, worker, token: randomBytes(8).toString("hex"), expiresAt: now() + ttlMs };
        if (!createClaim(claim)) {
          elsewhere();
          continue;
        }
        try {
          return await confirm(claim);
        } catch (error) {
          if (!ClaimRefusedError.isInstance(error)) throw error;
        }
      }
    }
    // Nothing in the index: a task whose claim expired is ready again.
    for (const task of await expiredClaims()) {
      try {
        return await claim(task.id, worker, claimOptions);
      } catch (error) {
        if (!ClaimRefusedError.isInstance(error)) throw error;
      }
    }
    return undefined;
  };

  /** Open tasks whose claim has expired (their marker went when they were claimed). */
  const expiredClaims = async (): Promise<HookTask[]> => {
    const names = await readdir(claimsDir).catch(() => [] as string[]);
    const found: HookTask[] = [];
    for (const name of names) {
      if (!name.endsWith(".json") || name.startsWith(".")) continue;
      const id = name.slice(0, -5);
      // The claim's mtime is its expiry: a live claim costs one stat; only expired ones are read.
      const stamp = statSync(join(claimsDir, name), { throwIfNoEntry: false });
      if (!stamp || stamp.mtimeMs > now()) continue;
      const held = await readClaim(id);
      if (held && held.expiresAt > now()) continue;
      const task = await readTask(id);
      if (task?.state === "open" && (await dependenciesComplete(task))) found.push(task);
    }
    return found;
  };

  const hook: FileWorkHookStore = {
    async add(tasks) {
      await mkdir(tasksDir, { recursive: true });
      await mkdir(readyDir, { recursive: true });
      await mkdir(dependentsDir, { recursive: true });
      await mkdir(claimsDir, { recursive: true });
      await withFileLock(join(dir, ".lock"), async () => {
        validateTasks([...(await all()).map((task) => ({ id: task.id, dependsOn: task.dependsOn })), ...tasks]);
        for (const task of tasks) if (!ID.test(task.id)) throw new InvalidArgumentError("tasks", `"${task.id}" is not a usable task id`);
        for (const task of tasks) {
          if (await readTask(task.id)) throw new InvalidArgumentError("tasks", `task "${task.id}" is already on the hook`);
        }
        for (const task of tasks) {
          await writeFileAtomic(
            taskFile(task.id),
            JSON.stringify({
              id: task.id,
              dependsOn: [...(task.dependsOn ?? [])],
              ...(task.payload === undefined ? {} : { payload: task.payload }),
              state: "open",
              attempts: 0,
            } satisfies HookTask),
          );
          for (const dependency of task.dependsOn ?? []) await appendFile(join(dependentsDir, `${dependency}.list`), `${task.id}\n`);
        }
        // Readiness read from disk after the dependents lists are written: a dependency that
        // completes meanwhile either sees this task in its list or is seen complete here.
        let added = false;
        for (const task of tasks) {
          const stored = (await readTask(task.id))!;
          if (await dependenciesComplete(stored)) {
            await markReady(task.id);
            added = true;
          }
        }
        if (added) await bumpGeneration();
      });
    },
    async ready() {
      const names = await readdir(readyDir).catch(() => [] as string[]);
      const result = new Map<string, HookTask>();
      for (const id of names) {
        const task = await readTask(id);
        if (!task || task.state !== "open") continue;
        const held = await readClaim(id);
        if (!held || held.expiresAt <= now()) result.set(id, task);
      }
      for (const task of await expiredClaims()) result.set(task.id, task);
      return [...result.values()].sort((left, right) => (left.id < right.id ? -1 : 1));
    },
    claim,
    async renew(held, { ttlMs = defaultTtlMs } = {}) {
      return lockedTask(held.taskId, async () => {
        await ownClaim(held);
        const renewed = { ...held, expiresAt: now() + ttlMs };
        writeClaim(renewed);
        return renewed;
      });
    },
    async complete(held, { result } = {}) {
      const dependents = await lockedTask(held.taskId, async () => {
        await ownClaim(held);
        const task = (await readTask(held.taskId))!;
        await writeFileAtomic(
          taskFile(task.id),
          JSON.stringify({ ...task, state: "complete", attempts: task.attempts + 1, ...(result === undefined ? {} : { result }) }),
        );
        await unmarkReady(task.id);
        await dropClaim(task.id);
        const list = await readFile(join(dependentsDir, `${task.id}.list`), "utf8").catch(() => "");
        return list.split("\n").filter(Boolean);
      });
      // Only the tasks that waited for this one are looked at, and only their dependencies read.
      let added = false;
      for (const id of new Set(dependents)) {
        const task = await readTask(id);
        if (task?.state === "open" && (await dependenciesComplete(task))) {
          await markReady(id);
          added = true;
        }
      }
      if (added) await bumpGeneration();
    },
    async fail(held, { reason, final = false }) {
      await lockedTask(held.taskId, async () => {
        await ownClaim(held);
        const task = (await readTask(held.taskId))!;
        await writeFileAtomic(
          taskFile(task.id),
          JSON.stringify({ ...task, state: final ? "failed" : "open", attempts: task.attempts + 1, reason }),
        );
        if (final) await unmarkReady(task.id);
        else await markReady(task.id);
        await dropClaim(task.id);
      });
      if (!final) await bumpGeneration();
    },
    async release(held) {
      await lockedTask(held.taskId, async () => {
        await ownClaim(held);
        await markReady(held.taskId);
        await dropClaim(held.taskId);
      });
      await bumpGeneration();
    },
    tasks: all,
    claimNext,
    close: async () => {},
  };
  return hook;
}

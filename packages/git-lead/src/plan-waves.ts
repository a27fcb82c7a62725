import { InvalidArgumentError, lazySchema, validateOptions } from "@bulkhead/core";
import { z } from "zod";
import { InvalidPlanError } from "./git-lead-errors.js";

/** A task to plan: its id, what it depends on, and the files it will touch (`repo/path`). */
export interface PlannedTask {
  id: string;
  dependsOn?: readonly string[];
  files: readonly string[];
}

/** Checks ids and dependencies, and returns the tasks sorted by id. Cycles and unknown ids throw. */
export function validateTasks<TTask extends { id: string; dependsOn?: readonly string[] }>(tasks: readonly TTask[]): TTask[] {
  if (!Array.isArray(tasks)) throw new InvalidArgumentError("tasks", "expected a list of tasks");
  const byId = new Map<string, TTask>();
  for (const task of tasks) {
    if (typeof task?.id !== "string" || task.id === "")
      throw new InvalidPlanError(`every task needs an id, got ${JSON.stringify(task?.id)}`);
    if (byId.has(task.id)) throw new InvalidPlanError(`task "${task.id}" is listed twice: give each task one entry`, { id: task.id });
    byId.set(task.id, task);
  }
  for (const task of tasks) {
    for (const dependency of task.dependsOn ?? []) {
      if (!byId.has(dependency))
        throw new InvalidPlanError(
          `task "${task.id}" depends on "${dependency}", which is not in the plan: add it or remove the dependency`,
          { id: task.id, dependency },
        );
    }
  }
  // Depth-first search for a cycle, reported as the path around it.
  const state = new Map<string, "visiting" | "done">();
  const visit = (id: string, path: string[]) => {
    if (state.get(id) === "done") return;
    if (state.get(id) === "visiting") {
      const cycle = [...path.slice(path.indexOf(id)), id];
      throw new InvalidPlanError(`dependencies form a cycle: ${cycle.join(" → ")}: break one of these dependencies`, { cycle });
    }
    state.set(id, "visiting");
    for (const dependency of [...(byId.get(id)!.dependsOn ?? [])].sort()) visit(dependency, [...path, id]);
    state.set(id, "done");
  };
  for (const id of [...byId.keys()].sort()) visit(id, []);
  return [...tasks].sort((left, right) => (left.id < right.id ? -1 : left.id > right.id ? 1 : 0));
}

/** Options of {@link planWaves}. */
export interface PlanWavesOptions {
  /** The tasks, in any order: the plan depends only on what they are. */
  tasks: readonly PlannedTask[];
  /** The most tasks in one wave. @default Infinity */
  maxPerWave?: number;
}

// Built on first use, not at import.
const planWavesSchema = lazySchema((): z.ZodType<PlanWavesOptions> =>
  z.object({
    tasks: z.custom<readonly PlannedTask[]>((value) => Array.isArray(value), "expected a list of tasks"),
    maxPerWave: z.number().int().min(1).or(z.literal(Infinity)).optional(),
  }),
);

/**
 * Plans waves (seed 001, "fewer workers, more waves"): a task runs only after every task it
 * depends on, no two tasks in one wave touch the same file, and the foundation goes first: the
 * tasks with the longest chain of work waiting on them, then those touching the most shared files.
 * Waves are as few as the dependencies allow: a chain of N tasks takes N waves, and a task is
 * pulled into the earliest wave where its dependencies are done and its files are free. The
 * result depends only on the tasks, not on their order.
 *
 * @example
 * planWaves({
 *   tasks: [{ id: "types", files: ["api/src/types.ts"] }, { id: "routes", dependsOn: ["types"], files: ["api/src/routes.ts"] }],
 *   maxPerWave: 3,
 * });
 * // [["types"], ["routes"]]
 */
export function planWaves(options: PlanWavesOptions): string[][] {
  const { tasks, maxPerWave = Infinity } = validateOptions(planWavesSchema(), options, "options");
  const sorted = validateTasks(tasks);
  const byId = new Map(sorted.map((task) => [task.id, { ...task, files: [...new Set(task.files)] }]));
  const claims = new Map<string, number>();
  for (const task of byId.values()) for (const file of task.files) claims.set(file, (claims.get(file) ?? 0) + 1);
  const dependents = new Map<string, string[]>(sorted.map((task) => [task.id, []]));
  for (const task of sorted) for (const dependency of new Set(task.dependsOn ?? [])) dependents.get(dependency)!.push(task.id);

  // Height: the longest chain of tasks that waits on this one, itself included (the critical path),
  // computed from the sinks up in reverse topological order (no recursion: chains can be long).
  const height = new Map<string, number>();
  const pending = new Map(sorted.map((task) => [task.id, dependents.get(task.id)!.length]));
  const sinks = sorted.filter((task) => pending.get(task.id) === 0).map((task) => task.id);
  while (sinks.length > 0) {
    const id = sinks.pop()!;
    height.set(id, 1 + Math.max(0, ...dependents.get(id)!.map((dependent) => height.get(dependent)!)));
    for (const dependency of new Set(byId.get(id)!.dependsOn ?? [])) {
      const left = pending.get(dependency)! - 1;
      pending.set(dependency, left);
      if (left === 0) sinks.push(dependency);
    }
  }
  const heightOf = (id: string) => height.get(id)!;
  const shared = new Map(sorted.map((task) => [task.id, byId.get(task.id)!.files.filter((file) => claims.get(file)! > 1).length]));
  const priority = (left: string, right: string) =>
    heightOf(right) - heightOf(left) || shared.get(right)! - shared.get(left)! || (left < right ? -1 : 1);

  // List scheduling: each wave takes the ready tasks by priority while their files are free.
  const waves: string[][] = [];
  const waveOf = new Map<string, number>();
  const waiting = new Map(sorted.map((task) => [task.id, new Set(task.dependsOn ?? []).size]));
  let ready = sorted.filter((task) => waiting.get(task.id) === 0).map((task) => task.id);
  while (ready.length > 0) {
    ready.sort(priority);
    const wave: string[] = [];
    const busy = new Set<string>();
    const later: string[] = [];
    for (const id of ready) {
      const files = byId.get(id)!.files;
      if (wave.length >= maxPerWave || files.some((file) => busy.has(file))) {
        later.push(id);
        continue;
      }
      wave.push(id);
      for (const file of files) busy.add(file);
    }
    for (const id of wave) waveOf.set(id, waves.length);
    waves.push(wave);
    for (const id of wave)
      for (const dependent of dependents.get(id)!) {
        const left = waiting.get(dependent)! - 1;
        waiting.set(dependent, left);
        if (left === 0) later.push(dependent);
      }
    ready = later;
  }

  // Compaction: pull each task into the earliest wave where its dependencies are done, its files
  // are free and there is room; a task moved earlier never breaks a dependent. Empty waves go.
  const filesIn = waves.map((wave) => new Set(wave.flatMap((id) => byId.get(id)!.files)));
  for (let index = 1; index < waves.length; index++) {
    for (const id of [...waves[index]!].sort(priority)) {
      const task = byId.get(id)!;
      const earliest = Math.max(0, ...[...new Set(task.dependsOn ?? [])].map((dependency) => waveOf.get(dependency)! + 1));
      for (let target = earliest; target < index; target++) {
        if (waves[target]!.length >= maxPerWave || task.files.some((file) => filesIn[target]!.has(file))) continue;
        waves[index] = waves[index]!.filter((other) => other !== id);
        for (const file of task.files) filesIn[index]!.delete(file);
        waves[target]!.push(id);
        for (const file of task.files) filesIn[target]!.add(file);
        waveOf.set(id, target);
        break;
      }
    }
  }
  return waves.filter((wave) => wave.length > 0).map((wave) => wave.sort(priority));
}

import { InvalidArgumentError } from "@bulkhead/core";
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

/**
 * Plans waves (seed 001, "fewer workers, more waves"): a task runs only after every task it
 * depends on, no two tasks in one wave touch the same file, and tasks that touch shared files go
 * first, as the foundation. The result depends only on the tasks, not on their order.
 *
 * @example
 * planWaves([{ id: "types", files: ["api/src/types.ts"] }, { id: "routes", dependsOn: ["types"], files: ["api/src/routes.ts"] }], { maxPerWave: 3 });
 * // [["types"], ["routes"]]
 */
export function planWaves(tasks: readonly PlannedTask[], { maxPerWave = Infinity }: { maxPerWave?: number } = {}): string[][] {
  if (!(maxPerWave >= 1)) throw new InvalidArgumentError("options.maxPerWave", `expected at least 1, got ${maxPerWave}`);
  const sorted = validateTasks(tasks);
  const claims = new Map<string, number>();
  for (const task of sorted) for (const file of new Set(task.files)) claims.set(file, (claims.get(file) ?? 0) + 1);
  const shared = (task: PlannedTask) => [...new Set(task.files)].filter((file) => claims.get(file)! > 1).length;

  const waves: string[][] = [];
  const placed = new Set<string>();
  while (placed.size < sorted.length) {
    const candidates = sorted
      .filter((task) => !placed.has(task.id) && (task.dependsOn ?? []).every((dependency) => placed.has(dependency)))
      .sort((left, right) => shared(right) - shared(left) || (left.id < right.id ? -1 : 1));
    const wave: string[] = [];
    const busy = new Set<string>();
    for (const task of candidates) {
      if (wave.length >= maxPerWave) break;
      if (task.files.some((file) => busy.has(file))) continue;
      wave.push(task.id);
      for (const file of task.files) busy.add(file);
    }
    for (const id of wave) placed.add(id);
    waves.push(wave);
  }
  return waves;
}

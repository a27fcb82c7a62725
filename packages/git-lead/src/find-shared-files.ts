import { lazySchema, resolveScope, validateOptions, type TaskSpec } from "@bulkhead/core";
import { z } from "zod";
import { validateTasks } from "./plan-waves.js";

/** A task for shared-file detection: a core task spec, or files and globs in one repo. */
export type ScopedTask = { id: string; dependsOn?: readonly string[] } & ({ spec: TaskSpec } | { repo: string; files: readonly string[] });

/** A file that two or more tasks claim, and how to coordinate it (seed 001, lesson 2). */
export interface SharedFile {
  /** `repo/path`. */
  file: string;
  tasks: string[];
  strategy: "interface-first" | "sequence" | "one-owner";
  reason: string;
  /** For `one-owner`: the task that should make every change to the file. */
  owner?: string;
}

const INTERFACE = /(^|\/)(types?|interfaces?|contracts?|schemas?|models?)(\/|\.|$)|\.d\.ts$|\.(proto|graphql|avsc)$/i;

/**
 * Resolves each task's scope (a core task spec, or file lists and globs against the repos) and
 * reports every file claimed by two or more tasks, with a strategy: define the interface first
 * for type and contract files, sequence the tasks when one already depends on another, and
 * otherwise give the file to one owner (the task that claims the most shared files).
 *
 * @example
 * await findSharedFiles({
 *   tasks: [{ id: "a", repo: "api", files: ["src/routes/**"] }, { id: "b", repo: "api", files: ["src/routes/index.ts"] }],
 *   repos: { api: "../api" },
 * });
 */
export async function findSharedFiles(options: FindSharedFilesOptions): Promise<SharedFile[]> {
  const { tasks, repos } = validateOptions(findSharedFilesSchema(), options, "options");
  return sharedFilesOf(await resolveTaskFiles(tasks, { repos }));
}

/** Options of {@link findSharedFiles}. */
export interface FindSharedFilesOptions {
  /** The tasks: each a core task spec, or files and globs in one repo. */
  tasks: readonly ScopedTask[];
  /** Repo name → directory, for resolving each task's scope. */
  repos: Record<string, string>;
}

// Built on first use, not at import.
const findSharedFilesSchema = lazySchema((): z.ZodType<FindSharedFilesOptions> =>
  z.object({
    tasks: z.custom<readonly ScopedTask[]>((value) => Array.isArray(value), "expected a list of tasks"),
    repos: z.record(z.string(), z.string().min(1)),
  }),
);

/** Each task (dependencies merged with its spec's own `depends_on`) with the files it claims. */
export interface ResolvedTask {
  id: string;
  dependsOn: string[];
  /** `repo/path`, sorted; files named exactly that do not exist yet are included. */
  files: string[];
}

/** Validates the tasks and resolves the files each claims, sorted by id. */
export async function resolveTaskFiles(
  tasks: readonly ScopedTask[],
  { repos }: { repos: Record<string, string> },
): Promise<ResolvedTask[]> {
  // A spec's own depends_on counts as much as the wrapper's.
  const sorted = validateTasks(
    tasks.map((task) => ({
      ...task,
      dependsOn: [...new Set([...(task.dependsOn ?? []), ...("spec" in task ? (task.spec.dependsOn ?? []) : [])])],
    })),
  );
  const resolved: ResolvedTask[] = [];
  for (const task of sorted) resolved.push({ id: task.id, dependsOn: task.dependsOn, files: await claimedFiles(task, repos) });
  return resolved;
}

/** The files two or more of the resolved tasks claim, each with a strategy. */
export function sharedFilesOf(tasks: readonly ResolvedTask[]): SharedFile[] {
  const claims = new Map<string, string[]>();
  const byId = new Map(tasks.map((task) => [task.id, task]));
  for (const task of tasks) for (const file of task.files) claims.set(file, [...(claims.get(file) ?? []), task.id]);
  const sharedCount = (id: string) => byId.get(id)!.files.filter((file) => claims.get(file)!.length > 1).length;
  const dependsOn = (left: string, right: string) => byId.get(left)?.dependsOn.includes(right) ?? false;
  const shared: SharedFile[] = [];
  for (const [file, ids] of [...claims.entries()].sort(([left], [right]) => (left < right ? -1 : 1))) {
    if (ids.length < 2) continue;
    const path = file.slice(file.indexOf("/") + 1);
    if (INTERFACE.test(path)) {
      shared.push({
        file,
        tasks: ids,
        strategy: "interface-first",
        reason: "a type or contract file: agree on it in a foundation wave, then let each task work against it",
      });
    } else if (ids.some((left) => ids.some((right) => dependsOn(left, right)))) {
      shared.push({
        file,
        tasks: ids,
        strategy: "sequence",
        reason: "the tasks already depend on each other: let them change it in that order",
      });
    } else {
      const owner = [...ids].sort((left, right) => sharedCount(right) - sharedCount(left) || (left < right ? -1 : 1))[0]!;
      shared.push({
        file,
        tasks: ids,
        strategy: "one-owner",
        owner,
        reason: `give every change to ${file} to ${owner}, which claims the most shared files`,
      });
    }
  }
  return shared;
}

async function claimedFiles(task: ScopedTask, repos: Record<string, string>): Promise<string[]> {
  const spec: TaskSpec =
    "spec" in task
      ? task.spec
      : {
          task: task.id,
          dependsOn: [],
          contextScope: {
            repos: [{ name: task.repo, paths: [...task.files], exclude: [] }],
            maxFiles: Number.MAX_SAFE_INTEGER,
            maxTokens: Number.MAX_SAFE_INTEGER,
          },
          ownership: { primaryRepo: task.repo, allowedCrossRepoReads: [], allowedCrossRepoWrites: [] },
          budgets: {},
          expectedFiles: [],
        };
  const scope = await resolveScope(spec, { repos, cache: false });
  const files = scope.files.map((file) => `${file.repo}/${file.path}`);
  // Files that do not exist yet still count when named exactly: two tasks creating one file collide too.
  for (const file of scope.toCreate ?? []) files.push(`${file.repo}/${file.path}`);
  for (const violation of scope.violations)
    if (violation.kind === "path-not-found" && !/[*?[{]/.test(violation.path)) files.push(`${violation.repo}/${violation.path}`);
  return [...new Set(files)].sort();
}

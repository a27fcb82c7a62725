import { lazySchema, validateOptions } from "@bulkhead/core";
import { z } from "zod";
import { resolveTaskFiles, sharedFilesOf, type ResolvedTask, type ScopedTask, type SharedFile } from "./find-shared-files.js";
import { planWaves } from "./plan-waves.js";

/** Options of {@link planWork}. */
export interface PlanWorkOptions {
  /** The tasks: each a core task spec, or files and globs in one repo. */
  tasks: readonly ScopedTask[];
  /** Repo name → directory, for resolving each task's scope. */
  repos: Record<string, string>;
  /** The most tasks in one wave. @default Infinity */
  maxPerWave?: number;
}

/** A plan: the waves, the shared files behind them, and what each task claims. */
export interface WorkPlan {
  /** Task ids per wave, foundation first; run a wave only after the one before it is done. */
  waves: string[][];
  /** Files two or more tasks claim, with how to coordinate each. */
  shared: SharedFile[];
  /** Every task with its merged dependencies and the files it claims (new files included). */
  tasks: ResolvedTask[];
}

// Built on first use, not at import.
const optionsSchema = lazySchema((): z.ZodType<PlanWorkOptions> =>
  z.object({
    tasks: z.custom<readonly ScopedTask[]>((value) => Array.isArray(value), "expected a list of tasks"),
    repos: z.record(z.string(), z.string().min(1)),
    maxPerWave: z.number().int().min(1).or(z.literal(Infinity)).optional(),
  }),
);

/**
 * The one planner behind the API and `bulkhead plan`: resolves every task's scope once (files a
 * task names but that do not exist yet count, so two tasks creating one file never share a
 * wave), reports the shared files and plans the waves from the same data.
 *
 * @example
 * const plan = await planWork({ tasks: [{ id: "types", spec: typesSpec }, { id: "jwt", spec: jwtSpec }], repos: { api: "../api" }, maxPerWave: 3 });
 * plan.waves; // [["types"], ["jwt"]]
 */
export async function planWork(options: PlanWorkOptions): Promise<WorkPlan> {
  const { tasks, repos, maxPerWave = Infinity } = validateOptions(optionsSchema(), options, "options");
  const resolved = await resolveTaskFiles(tasks, { repos });
  return { waves: planWaves({ tasks: resolved, maxPerWave }), shared: sharedFilesOf(resolved), tasks: resolved };
}

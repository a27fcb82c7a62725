import { InvalidArgumentError } from "@bulkhead/core";
import { CONTEXT_COSTS, CONTEXT_RULE, layerOf } from "./estimate-context.js";

/** One proposed scope of a split. */
export interface SplitScope {
  /** The layers or top-level directories it holds. */
  name: string;
  files: string[];
  /** Its estimated consumption, from seed 003's table or real counts. */
  low: number;
  high: number;
  /**
   * Whether `high` stays within 70% of the window. False only for a scope holding one file that
   * alone does not fit: split that file, summarize it, or use a larger window.
   */
  fits: boolean;
}

const LAYER_ORDER = ["domain", "application", "infrastructure", "framework", "frontend", "tests"];

/**
 * Groups a task's files by architectural layer (or top-level directory when no layer is
 * recognised) and packs the groups, in layer order, into scopes that each stay within seed 003's
 * 70% rule. Each scope is costed as one prompt, a read and an edit per file, a test run and a
 * gate run; `tokens` per file replace the read range when known.
 *
 * @example
 * suggestSplit({ files: scope.files.map((file) => ({ path: file.path, tokens: file.tokens })) }, { contextWindow: 200_000 });
 */
export function suggestSplit(
  task: { files: readonly (string | { path: string; tokens?: number })[] },
  { contextWindow }: { contextWindow: number },
): SplitScope[] {
  if (!(contextWindow > 0))
    throw new InvalidArgumentError("options.contextWindow", `expected a positive token count, got ${contextWindow}`);
  if (!Array.isArray(task?.files)) throw new InvalidArgumentError("task.files", "expected the task's files");
  const files = task.files.map((file) => (typeof file === "string" ? { path: file } : file));
  const groups = new Map<string, typeof files>();
  for (const file of files) {
    const key = layerOf(file.path) ?? file.path.split("/")[0] ?? file.path;
    groups.set(key, [...(groups.get(key) ?? []), file]);
  }
  const ordered = [...groups.entries()].sort(([left], [right]) => rank(left) - rank(right) || left.localeCompare(right));

  const base = CONTEXT_COSTS.prompt[1] + CONTEXT_COSTS.testRun[1] + CONTEXT_COSTS.gateRun[1];
  const baseLow = CONTEXT_COSTS.prompt[0] + CONTEXT_COSTS.testRun[0] + CONTEXT_COSTS.gateRun[0];
  const cost = (file: { tokens?: number }): [number, number] =>
    file.tokens === undefined
      ? [CONTEXT_COSTS.fileRead[0] + CONTEXT_COSTS.edit[0], CONTEXT_COSTS.fileRead[1] + CONTEXT_COSTS.edit[1]]
      : [file.tokens + CONTEXT_COSTS.edit[0], file.tokens + CONTEXT_COSTS.edit[1]];
  const limit = contextWindow * CONTEXT_RULE;

  const scopes: SplitScope[] = [];
  let current: SplitScope | undefined;
  const open = (name: string) => {
    current = { name, files: [], low: baseLow, high: base, fits: true };
    scopes.push(current);
    return current;
  };
  for (const [name, members] of ordered) {
    const groupHigh = members.reduce((sum, file) => sum + cost(file)[1], 0);
    if (current && current.high + groupHigh <= limit) {
      current.name += `, ${name}`;
    } else open(name);
    for (const file of members) {
      const [low, high] = cost(file);
      // A group too large for one scope is cut file by file.
      if (current!.files.length > 0 && current!.high + high > limit) open(`${name} (cont.)`);
      current!.files.push(file.path);
      current!.low += low;
      current!.high += high;
    }
  }
  for (const scope of scopes) scope.fits = scope.high <= limit;
  return scopes;
}

function rank(group: string): number {
  const index = LAYER_ORDER.indexOf(group);
  return index === -1 ? LAYER_ORDER.length : index;
}

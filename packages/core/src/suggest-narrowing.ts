import type { ScopeFile } from "./resolve-scope.js";

/** One removal that narrows a scope: a directory or a file, with what it holds. */
export interface NarrowingStep {
  repo: string;
  path: string;
  kind: "directory" | "file";
  files: number;
  tokens: number;
}

/** What to take out of a scope to bring it under its limits, and what is left after. */
export interface NarrowingAdvice {
  /** The fewest removals that bring the scope under the limits (none overlapping); empty when it fits already or nothing can. */
  remove: NarrowingStep[];
  /** The scope's totals once they are removed. */
  after: { files: number; tokens: number };
  /** True when the removals bring the scope under every limit. */
  fits: boolean;
}

/**
 * The smallest set of directories and files whose removal brings a scope under `maxFiles` and
 * `maxTokens`: one removal when one suffices (the lightest that does, so the most context stays),
 * otherwise the heaviest parts that do not overlap, heaviest first. A directory that holds the
 * whole scope (the ancestor chain `packages`, `packages/ai`, ...) is never advised: removing it
 * leaves nothing. Linear in the files times their depth.
 *
 * @example
 * const advice = suggestNarrowing(scope.files, { maxFiles: 15, maxTokens: 50_000 });
 * for (const step of advice.remove) console.log(`exclude ${step.repo}/${step.path} (${step.tokens} tokens)`);
 */
export function suggestNarrowing(
  files: readonly Pick<ScopeFile, "repo" | "path" | "tokens">[],
  { maxFiles = Infinity, maxTokens = Infinity }: { maxFiles?: number; maxTokens?: number },
): NarrowingAdvice {
  const total = { files: files.length, tokens: files.reduce((sum, file) => sum + file.tokens, 0) };
  const needFiles = Math.max(0, total.files - maxFiles);
  const needTokens = Math.max(0, total.tokens - maxTokens);
  if (needFiles === 0 && needTokens === 0) return { remove: [], after: total, fits: true };

  const directories = new Map<string, NarrowingStep>();
  for (const file of files) {
    let slash = file.path.lastIndexOf("/");
    while (slash > 0) {
      const path = file.path.slice(0, slash);
      const key = `${file.repo}\0${path}`;
      const step = directories.get(key) ?? { repo: file.repo, path, kind: "directory" as const, files: 0, tokens: 0 };
      step.files++;
      step.tokens += file.tokens;
      directories.set(key, step);
      slash = path.lastIndexOf("/");
    }
  }
  const candidates: NarrowingStep[] = [
    // A directory holding every file of the scope is an ancestor, not advice.
    ...[...directories.values()].filter((step) => step.files < total.files),
    ...(files.length > 1
      ? files.map((file) => ({ repo: file.repo, path: file.path, kind: "file" as const, files: 1, tokens: file.tokens }))
      : []),
  ];
  const covers = (files: number, tokens: number) => files >= needFiles && tokens >= needTokens;
  const byWeight = (left: NarrowingStep, right: NarrowingStep) =>
    (needTokens > 0 ? right.tokens - left.tokens : 0) ||
    right.files - left.files ||
    right.tokens - left.tokens ||
    (left.path < right.path ? -1 : 1);
  const after = (removed: readonly NarrowingStep[]) => {
    const files = removed.reduce((sum, step) => sum + step.files, 0);
    const tokens = removed.reduce((sum, step) => sum + step.tokens, 0);
    return { files: total.files - files, tokens: total.tokens - tokens };
  };

  // One removal, when one suffices: the lightest of those that do.
  const single = candidates
    .filter((step) => covers(step.files, step.tokens))
    .sort((left, right) => left.tokens - right.tokens || left.files - right.files || (left.path < right.path ? -1 : 1))[0];
  if (single) return { remove: [single], after: after([single]), fits: true };

  // Otherwise the heaviest parts that do not overlap, until the scope fits.
  const inside = (child: NarrowingStep, parent: NarrowingStep) =>
    child.repo === parent.repo && (child.path === parent.path || child.path.startsWith(`${parent.path}/`));
  const remove: NarrowingStep[] = [];
  let removedFiles = 0;
  let removedTokens = 0;
  for (const step of candidates.sort(byWeight)) {
    if (covers(removedFiles, removedTokens)) break;
    if (remove.some((taken) => inside(step, taken) || inside(taken, step))) continue;
    remove.push(step);
    removedFiles += step.files;
    removedTokens += step.tokens;
  }
  const left = after(remove);
  return { remove, after: left, fits: left.files <= maxFiles && left.tokens <= maxTokens && left.files > 0 };
}

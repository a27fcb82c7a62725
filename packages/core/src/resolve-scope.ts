import { z } from "zod";
import type { ScopeCache } from "./scope-cache.js";
import type { ScopeViolation, ScopeHotspot } from "./scope-limit-error.js";
import { resolveValidatedScope } from "./scope-resolver.js";
import type { TaskSpec } from "./task-spec.js";
import type { TokenCounter } from "./token-counter.js";
import { validateOptions } from "./validate-options.js";

export interface ScopeFile {
  repo: string;
  /** Relative to the repo root, POSIX separators. */
  path: string;
  bytes: number;
  tokens: number;
  /**
   * Present (true) when counting stopped at a limit before this file was read: `tokens` is then
   * `ceil(bytes / 4)` from its size, and the file was not checked for binary content.
   */
  estimated?: true;
}

/** A file that matched the scope but was left out, and why. */
export interface SkippedFile {
  repo: string;
  path: string;
  reason: "binary" | "too-large" | "broken-symlink" | "unreadable";
}

/** A path that was refused because following it would leave the repo. */
export interface RefusedPath {
  repo: string;
  path: string;
  reason: string;
}

/**
 * A symbolic link met while walking a repo. Like git, a scope keeps a link as a link: it is
 * reported here and neither read nor walked (its target is in the scope by its own path, or not
 * at all). A link named directly in `paths` is the exception: the spec author asked for it.
 */
export interface ScopeLink {
  repo: string;
  path: string;
  /** Where it points, relative to the repo root. */
  target: string;
  /** What the target is. */
  kind: "file" | "directory";
  /** Always false: a link met in a walk is not walked (kept for readers of the older shape). */
  walked: boolean;
}

/** The exact list of files a task may see, with totals, limit checks and permission checks. */
export interface ResolvedScope {
  /** Sorted by repo, then path (byte order). */
  files: ScopeFile[];
  totals: { files: number; bytes: number; tokens: number };
  /** True when token counts are estimates (no exact counter was given). */
  estimated: boolean;
  /**
   * False when `stopAtLimit` stopped counting once a limit was certainly exceeded: the files not
   * read are listed from their size (`estimated: true`), and the totals and advice are estimates.
   */
  complete: boolean;
  /** The counter's name, e.g. `o200k_base` or `bytes/4`. */
  counter: string;
  /** Over `max_files`, over `max_tokens`, or a path that does not exist. Empty when usable. */
  violations: ScopeViolation[];
  /**
   * Paths the scope names that do not exist yet: files the task will create. A literal path
   * counts as one when `expected_files` lists it with `change: create`, or when its directory
   * exists. The limits count existing files only; any other missing path is a violation.
   */
  toCreate: { repo: string; path: string }[];
  skipped: SkippedFile[];
  refused: RefusedPath[];
  /** Symbolic links met in the repos, sorted: reported, not read or walked. */
  links: ScopeLink[];
  /** The directories and files holding the most tokens, heaviest first. */
  largest(limit?: number): { directories: ScopeHotspot[]; files: ScopeHotspot[] };
  /** Throws {@link ScopeLimitError} with narrowing advice when there are violations. */
  assertWithinLimits(): void;
  /** True when the path is inside the scope, or in a repo the task may read across. */
  canRead(repo: string, path: string): boolean;
  /** True when the path is inside the primary repo's scope, or in a repo the task may write across. */
  canWrite(repo: string, path: string): boolean;
}

export interface ResolveScopeOptions {
  /** Repo name → directory on disk, for every repo the spec names. */
  repos: Record<string, string>;
  /** Counts tokens; without one, counts are `ceil(bytes / 4)` and marked estimated. */
  counter?: TokenCounter;
  abortSignal?: AbortSignal;
  /** Reuses fingerprints and counts across calls. `false` turns caching off. @default a shared cache */
  cache?: ScopeCache | false;
  /** Files larger than this are skipped as `too-large`. @default 1_048_576 */
  maxFileBytes?: number;
  /** Leave out files that `.gitignore` and `.git/info/exclude` ignore. @default true */
  gitignore?: boolean;
  /**
   * Stop reading and counting as soon as `max_files` or `max_tokens` is certainly exceeded (the
   * files read so far already exceed it): an over-limit scope is refused after counting about
   * its limit, not the whole tree. The rest of the files are then listed from their sizes and
   * marked `estimated`, `complete` is false, and the violation's `counted` is the exact part.
   * @default false
   */
  stopAtLimit?: boolean;
}

// Built on first use: importing core builds no schema.
let optionsSchema: z.ZodType<ResolveScopeOptions> | undefined;
const schemaOf = () =>
  (optionsSchema ??= z.object({
    repos: z.record(z.string(), z.string().min(1, "expected a directory path")),
    counter: z
      .custom<TokenCounter>((value) => typeof (value as TokenCounter | undefined)?.count === "function", "expected a TokenCounter")
      .optional(),
    abortSignal: z.custom<AbortSignal>((value) => value instanceof AbortSignal, "expected an AbortSignal").optional(),
    cache: z
      .union([
        z.literal(false),
        z.custom<ScopeCache>((value) => typeof (value as ScopeCache | undefined)?.getContent === "function", "expected a ScopeCache"),
      ])
      .optional(),
    maxFileBytes: z.number().int().positive().optional(),
    gitignore: z.boolean().optional(),
    stopAtLimit: z.boolean().optional(),
  }) as z.ZodType<ResolveScopeOptions>);

/**
 * Resolves a task spec's context scope against real directories: the exact files the agent may
 * see, with sizes and token counts, checked against `max_files` and `max_tokens`. Directories are
 * walked recursively, globs matched, `exclude` always wins, `.git/` and git-ignored files are left
 * out, binary files are skipped and listed, and symlinks met in a walk are reported, not walked
 * (one named in `paths` is followed, inside its repo only). With `stopAtLimit`, an over-limit
 * scope is refused after counting about its limit. See docs/scope.md.
 *
 * @example
 * const scope = await resolveScope(spec, { repos: { "backend-api": "../backend-api" } });
 * scope.assertWithinLimits();
 * scope.canWrite("backend-api", "src/middleware/rate-limit.ts"); // true
 */
export async function resolveScope(spec: TaskSpec, options: ResolveScopeOptions): Promise<ResolvedScope> {
  return resolveValidatedScope(spec, validateOptions(schemaOf(), options, "options"));
}

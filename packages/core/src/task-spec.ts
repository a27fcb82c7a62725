import { z } from "zod";
import { normalizeRepoPath } from "./repo-path.js";

/** Builds a zod error callback that says what was expected and what was found. */
function expected(what: string) {
  return (issue: { input?: unknown }): string =>
    issue.input === undefined ? `is required: expected ${what}` : `expected ${what}, got ${describeValue(issue.input)}`;
}

/** A short, quoted rendering of a value for error messages. */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

const positiveInteger = () => {
  const error = expected("a positive integer");
  return z.number({ error }).int({ error }).positive({ error });
};
const nonEmptyText = (what: string) =>
  z
    .string({ error: expected(what) })
    .trim()
    .min(1, { error: expected(what) });
/** A repo name: letters, digits, `.`, `_` and `-`, starting with a letter or digit. */
export const REPO_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

const repoName = () =>
  z
    .string({ error: expected("a repo name") })
    .regex(REPO_NAME_PATTERN, { error: expected("a repo name of letters, digits, '.', '_' or '-'") });
const taskId = () =>
  z
    .string({ error: expected("a task id") })
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/, { error: expected("a task id of letters, digits, '.', '_', ':', '/' or '-'") });
const list = <TItem extends z.ZodType>(item: TItem, what: string) => z.array(item, { error: expected(`a list of ${what}`) });

/** A path, directory or glob inside a repo: relative, and never climbing out of it. */
const scopePath = () =>
  z.string({ error: expected("a path relative to the repo root") }).superRefine((value, context) => {
    const normalized = normalizeRepoPath(value);
    if (!normalized.ok) {
      context.addIssue({ code: "custom", message: `path ${JSON.stringify(value)} ${normalized.reason}`, input: value });
    }
  });

let fileSchema: ReturnType<typeof buildFileSchema> | undefined;

function buildFileSchema() {
  const tokens = positiveInteger;
  return z.strictObject(
    {
      task: nonEmptyText("a one-line description of the task").describe("What the agent should do, in one line."),
      id: taskId().optional().describe("A stable task id, used by depends_on and in commit trailers."),
      depends_on: list(taskId(), "task ids").optional().describe("Ids of tasks that must be complete first."),
      context_scope: z.strictObject(
        {
          repos: list(
            z.strictObject(
              {
                name: repoName(),
                paths: list(scopePath(), "paths, directories or globs").min(1, {
                  error: "is empty: list at least one path, directory or glob",
                }),
                exclude: list(scopePath(), "paths, directories or globs").optional(),
              },
              { error: expected("a mapping with name, paths and exclude") },
            ),
            "repos",
          ).min(1, { error: "is empty: list at least one repo" }),
          max_files: positiveInteger().describe("The most files the scope may resolve to."),
          max_tokens: positiveInteger().describe("The most tokens the scope's files may hold together."),
        },
        { error: expected("a mapping with repos, max_files and max_tokens") },
      ),
      ownership: z.strictObject(
        {
          primary_repo: repoName().describe("The repo the task owns: writes there pass the guard."),
          allowed_cross_repo_reads: list(repoName(), "repo names").optional().describe("Other repos the agent may read anywhere in."),
          allowed_cross_repo_writes: list(repoName(), "repo names")
            .optional()
            .describe("Other repos the agent may write to without approval."),
        },
        { error: expected("a mapping with primary_repo") },
      ),
      budgets: z
        .strictObject(
          {
            context_read: tokens().optional().describe("Tokens of context read before the run (checked pre-execution)."),
            generation: tokens().optional().describe("Tokens generated (stopped mid-execution)."),
            tool_calls: tokens().optional().describe("Tokens spent in tool calls (blocked per invocation)."),
            session_total: tokens().optional().describe("Every token of the session (forces a handover)."),
            usd: z
              .number({ error: expected("a positive amount of US dollars") })
              .positive({ error: expected("a positive amount of US dollars") })
              .optional(),
          },
          { error: expected("a mapping of budget limits") },
        )
        .optional(),
      expected_files: list(
        z.strictObject(
          {
            repo: repoName().optional(),
            path: scopePath(),
            change: z.enum(["create", "modify", "delete"], { error: expected('"create", "modify" or "delete"') }).optional(),
          },
          { error: expected("a mapping with repo, path and change") },
        ),
        "expected files",
      ).optional(),
    },
    { error: expected("a mapping (the task spec)") },
  );
}

/**
 * The zod schema of a task spec file (`handover.yaml`), in the file's snake_case keys.
 * Built on first use. Cross-field rules live in {@link parseTaskSpec}.
 */
export function taskSpecFileSchema(): ReturnType<typeof buildFileSchema> {
  fileSchema ??= buildFileSchema();
  return fileSchema;
}

/** A task spec as written in a file, with snake_case keys. */
export type TaskSpecFile = z.input<ReturnType<typeof buildFileSchema>>;

/** One repo of a task's context scope. */
export interface ScopeRepo {
  /** The repo's name; callers map it to a directory. */
  name: string;
  /** Files, directories (recursive) or globs, relative to the repo root and normalized. */
  paths: string[];
  /** Files, directories or globs left out; an exclusion always wins. @default [] */
  exclude: string[];
}

/** A parsed, validated task spec (seed 000's `handover.yaml`) in camelCase. */
export interface TaskSpec {
  /** What the agent should do, in one line. */
  task: string;
  /** A stable id, used by `depends_on` and in commit trailers. */
  id?: string;
  /** Ids of tasks that must be complete first. @default [] */
  dependsOn: string[];
  contextScope: {
    repos: ScopeRepo[];
    /** The most files the scope may resolve to. */
    maxFiles: number;
    /** The most tokens the scope's files may hold together. */
    maxTokens: number;
  };
  ownership: {
    /** The repo the task owns: writes there pass the guard. */
    primaryRepo: string;
    /** Other repos the agent may read anywhere in. @default [] */
    allowedCrossRepoReads: string[];
    /** Other repos the agent may write to without approval. @default [] */
    allowedCrossRepoWrites: string[];
  };
  /** Token limits for seed 000's four budget kinds, and an optional dollar cap. @default {} */
  budgets: {
    contextRead?: number;
    generation?: number;
    toolCalls?: number;
    sessionTotal?: number;
    usd?: number;
  };
  /** Files the task is expected to produce, for continuation checks. @default [] */
  expectedFiles: { repo: string; path: string; change?: "create" | "modify" | "delete" }[];
}

function normalized(path: string): string {
  const result = normalizeRepoPath(path);
  return result.ok ? result.path : path;
}

/** Maps a validated file (snake_case) to the API shape (camelCase), normalizing paths. */
export function taskSpecFromFile(file: z.output<ReturnType<typeof buildFileSchema>>): TaskSpec {
  const spec: TaskSpec = {
    task: file.task,
    dependsOn: file.depends_on ?? [],
    contextScope: {
      repos: file.context_scope.repos.map((repo) => ({
        name: repo.name,
        paths: repo.paths.map(normalized),
        exclude: (repo.exclude ?? []).map(normalized),
      })),
      maxFiles: file.context_scope.max_files,
      maxTokens: file.context_scope.max_tokens,
    },
    ownership: {
      primaryRepo: file.ownership.primary_repo,
      allowedCrossRepoReads: file.ownership.allowed_cross_repo_reads ?? [],
      allowedCrossRepoWrites: file.ownership.allowed_cross_repo_writes ?? [],
    },
    budgets: {},
    expectedFiles: (file.expected_files ?? []).map((entry) => ({
      repo: entry.repo ?? file.ownership.primary_repo,
      path: normalized(entry.path),
      ...(entry.change === undefined ? {} : { change: entry.change }),
    })),
  };
  if (file.id !== undefined) spec.id = file.id;
  const budgets = file.budgets ?? {};
  if (budgets.context_read !== undefined) spec.budgets.contextRead = budgets.context_read;
  if (budgets.generation !== undefined) spec.budgets.generation = budgets.generation;
  if (budgets.tool_calls !== undefined) spec.budgets.toolCalls = budgets.tool_calls;
  if (budgets.session_total !== undefined) spec.budgets.sessionTotal = budgets.session_total;
  if (budgets.usd !== undefined) spec.budgets.usd = budgets.usd;
  return spec;
}

/** Maps a task spec back to its file shape (snake_case), e.g. to write a `handover.yaml`. */
export function taskSpecToFile(spec: TaskSpec): TaskSpecFile {
  const budgets: NonNullable<TaskSpecFile["budgets"]> = {};
  if (spec.budgets.contextRead !== undefined) budgets.context_read = spec.budgets.contextRead;
  if (spec.budgets.generation !== undefined) budgets.generation = spec.budgets.generation;
  if (spec.budgets.toolCalls !== undefined) budgets.tool_calls = spec.budgets.toolCalls;
  if (spec.budgets.sessionTotal !== undefined) budgets.session_total = spec.budgets.sessionTotal;
  if (spec.budgets.usd !== undefined) budgets.usd = spec.budgets.usd;
  return {
    task: spec.task,
    ...(spec.id === undefined ? {} : { id: spec.id }),
    ...(spec.dependsOn.length === 0 ? {} : { depends_on: spec.dependsOn }),
    context_scope: {
      repos: spec.contextScope.repos.map((repo) => ({ name: repo.name, paths: repo.paths, exclude: repo.exclude })),
      max_files: spec.contextScope.maxFiles,
      max_tokens: spec.contextScope.maxTokens,
    },
    ownership: {
      primary_repo: spec.ownership.primaryRepo,
      allowed_cross_repo_reads: spec.ownership.allowedCrossRepoReads,
      allowed_cross_repo_writes: spec.ownership.allowedCrossRepoWrites,
    },
    ...(Object.keys(budgets).length === 0 ? {} : { budgets }),
    ...(spec.expectedFiles.length === 0 ? {} : { expected_files: spec.expectedFiles }),
  };
}

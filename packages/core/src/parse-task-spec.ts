import { open } from "node:fs/promises";
import { isScalar, LineCounter, parseDocument, visit, type Document, type Node as YamlNode } from "yaml";
import type { z } from "zod";
import { didYouMean } from "./did-you-mean.js";
import { InvalidArgumentError } from "./invalid-argument-error.js";
import { InvalidTaskSpecError, type TaskSpecProblem } from "./invalid-task-spec-error.js";
import { formatYamlPath, locateYamlPath } from "./yaml-location.js";
import { REPO_NAME_PATTERN, taskSpecFileSchema, taskSpecFromFile, type TaskSpec } from "./task-spec.js";

/** Largest task spec accepted, in bytes: a spec is a page, not a data set. */
export const MAX_TASK_SPEC_BYTES = 256 * 1024;
/** Most YAML aliases expanded: enough for real reuse, too few for an alias bomb. */
const MAX_ALIAS_COUNT = 64;

export interface ParseTaskSpecOptions {
  /** The name used in error messages, usually the file path. @default "handover.yaml" */
  source?: string;
  /**
   * Repos the caller knows (e.g. the keys of its repo map). When given, every repo named in
   * `allowed_cross_repo_reads`, `allowed_cross_repo_writes` and `expected_files` must be one of
   * them or a scope repo.
   */
  knownRepos?: readonly string[];
}

type Path = readonly (string | number)[];

const formatPath = formatYamlPath;
const locate = (document: Document, lines: LineCounter, path: Path, unknownKey?: string) =>
  locateYamlPath(document, lines, path, unknownKey === undefined ? {} : { unknownKey });

/** The keys a strict object schema accepts at a path, for "did you mean". */
function knownKeysAt(path: Path): string[] {
  let schema: unknown = taskSpecFileSchema();
  for (const key of path) {
    schema = unwrap(schema);
    const def = (schema as { _zod: { def: Record<string, unknown> } })._zod.def;
    if (def.type === "object") schema = (def.shape as Record<string, unknown>)[String(key)];
    else if (def.type === "array") schema = def.element;
    if (schema === undefined) return [];
  }
  const def = (unwrap(schema) as { _zod: { def: Record<string, unknown> } })._zod.def;
  return def.type === "object" ? Object.keys(def.shape as object) : [];
}

function unwrap(schema: unknown): unknown {
  let current = schema as { _zod: { def: { type: string; innerType?: unknown } } };
  while (current._zod.def.innerType !== undefined) current = current._zod.def.innerType as typeof current;
  return current;
}

function problemsFromZod(error: z.ZodError, document: Document, lines: LineCounter): TaskSpecProblem[] {
  const problems: TaskSpecProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      const known = knownKeysAt(issue.path as Path);
      for (const key of issue.keys) {
        const suggestion = didYouMean(key, known);
        // Seed 000's own file, flattened: a key of a section written at the top level.
        const section =
          issue.path.length === 0 ? ["context_scope", "ownership", "budgets"].find((name) => knownKeysAt([name]).includes(key)) : undefined;
        const hint = section
          ? `it belongs under ${section}: indent it (two spaces) below "${section}:"`
          : suggestion
            ? `did you mean "${suggestion}"?`
            : `expected one of: ${known.join(", ")}`;
        problems.push({
          path: formatPath([...(issue.path as Path), key]),
          ...locate(document, lines, issue.path as Path, key),
          message: `unknown key; ${hint}`,
        });
      }
      continue;
    }
    problems.push({ path: formatPath(issue.path as Path), ...locate(document, lines, issue.path as Path), message: issue.message });
  }
  return problems;
}

const asRecord = (value: unknown): Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
const asList = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
const asNames = (value: unknown): (string | undefined)[] => asList(value).map((item) => (typeof item === "string" ? item : undefined));

/**
 * Cross-field rules that a per-field schema cannot express. They read the raw file defensively,
 * so they are reported together with field errors: one run lists every problem.
 */
function crossFieldProblems(
  raw: unknown,
  options: ParseTaskSpecOptions,
  at: (path: Path) => { line: number; column: number },
): TaskSpecProblem[] {
  const problems: TaskSpecProblem[] = [];
  const add = (path: Path, message: string) => problems.push({ path: formatPath(path), ...at(path), message });
  const file = asRecord(raw);
  const scope = asRecord(file.context_scope);
  const ownership = asRecord(file.ownership);
  const scopeRepos = asList(scope.repos).map((repo) => asRecord(repo).name);

  const seen = new Set<unknown>();
  scopeRepos.forEach((name, index) => {
    if (typeof name === "string" && seen.has(name))
      add(["context_scope", "repos", index, "name"], `repo "${name}" is listed twice: merge its paths into one entry`);
    seen.add(name);
  });
  const names = scopeRepos.filter((name): name is string => typeof name === "string" && REPO_NAME_PATTERN.test(name));

  const primary = ownership.primary_repo;
  if (typeof primary === "string" && names.length > 0 && names.length === scopeRepos.length && !names.includes(primary)) {
    const suggestion = didYouMean(primary, names);
    add(
      ["ownership", "primary_repo"],
      `"${primary}" is not one of the scope's repos (${names.join(", ")})${suggestion ? `; did you mean "${suggestion}"?` : ": name a repo listed in context_scope.repos"}`,
    );
  }

  const known = options.knownRepos ? [...new Set([...options.knownRepos, ...names])] : undefined;
  for (const key of ["allowed_cross_repo_reads", "allowed_cross_repo_writes"]) {
    asNames(ownership[key]).forEach((name, index) => {
      if (name === undefined) return;
      if (known && !known.includes(name)) {
        const suggestion = didYouMean(name, known);
        add(
          ["ownership", key, index],
          `repo "${name}" is unknown${suggestion ? `; did you mean "${suggestion}"?` : `: known repos are ${known.join(", ")}`}`,
        );
      }
      if (name === primary) add(["ownership", key, index], `"${name}" is the primary repo, which is always allowed: remove it`);
    });
  }

  const dependsOn = asNames(file.depends_on);
  if (typeof file.id === "string" && dependsOn.includes(file.id)) {
    add(["depends_on", dependsOn.indexOf(file.id)], `task "${file.id}" cannot depend on itself`);
  }

  const writable = [primary, ...asNames(ownership.allowed_cross_repo_writes)];
  asList(file.expected_files).forEach((entry, index) => {
    const repo = asRecord(entry).repo;
    if (typeof repo === "string" && typeof primary === "string" && !writable.includes(repo)) {
      add(
        ["expected_files", index, "repo"],
        `"${repo}" is not writable by this task: use the primary repo or list it in ownership.allowed_cross_repo_writes`,
      );
    }
  });
  return problems;
}

/**
 * Parses a task spec (seed 000's `handover.yaml`) from YAML or JSON text, validates it and
 * returns it in camelCase. Throws {@link InvalidTaskSpecError} listing every problem with its
 * key path and `line:column`; unknown keys get a "did you mean" hint; alias bombs and files over
 * {@link MAX_TASK_SPEC_BYTES} are refused.
 *
 * @example
 * const spec = parseTaskSpec(await readFile("handover.yaml", "utf8"), { source: "handover.yaml" });
 * spec.contextScope.maxFiles; // 15
 */
export function parseTaskSpec(text: string, options: ParseTaskSpecOptions = {}): TaskSpec {
  if (typeof text !== "string") throw new InvalidArgumentError("text", `expected the spec's text as a string, got ${typeof text}`);
  const source = options.source ?? "handover.yaml";
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > MAX_TASK_SPEC_BYTES) {
    throw new InvalidTaskSpecError(source, [
      {
        path: "",
        line: 0,
        column: 0,
        message: `is ${bytes} bytes, over the ${MAX_TASK_SPEC_BYTES}-byte limit for a task spec: split the task`,
      },
    ]);
  }

  const lines = new LineCounter();
  // The yaml library's own uniqueKeys check compares every key with every earlier one: quadratic
  // (a 1 MB map of distinct keys took minutes). Duplicates are found below with a set per map.
  const document = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false, strict: true });
  if (document.errors.length === 0) duplicateKeyErrors(document, lines, source);
  if (document.errors.length > 0) {
    throw new InvalidTaskSpecError(
      source,
      document.errors.map((error) => {
        const position = lines.linePos(error.pos[0]);
        const first = error.message.split("\n")[0]!;
        const message = /multiple documents/.test(first)
          ? "the file holds more than one YAML document (a --- line): keep one task spec per file"
          : `not valid YAML or JSON: ${first}`;
        return { path: "", line: position.line, column: position.col, message };
      }),
    );
  }

  let raw: unknown;
  try {
    raw = document.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    throw new InvalidTaskSpecError(source, [
      {
        path: "",
        line: 0,
        column: 0,
        message: `refused: ${(error as Error).message} (more than ${MAX_ALIAS_COUNT} alias expansions; is this an alias bomb?)`,
      },
    ]);
  }

  const result = taskSpecFileSchema().safeParse(raw ?? undefined);
  const problems = [
    ...(result.success ? [] : problemsFromZod(result.error, document, lines)),
    ...crossFieldProblems(raw, options, (path) => locate(document, lines, path)),
  ];
  if (problems.length > 0 || !result.success) throw new InvalidTaskSpecError(source, sortProblems(problems));
  return taskSpecFromFile(result.data);
}

/** Refuses a map that repeats a key, in linear time: one set of keys per map. */
function duplicateKeyErrors(document: Document, lines: LineCounter, source: string): void {
  const problems: TaskSpecProblem[] = [];
  visit(document, {
    Map(_key, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        const key = isScalar(pair.key) ? `s:${String(pair.key.value)}` : `j:${JSON.stringify(pair.key)}`;
        if (!seen.has(key)) {
          seen.add(key);
          continue;
        }
        const position = lines.linePos((pair.key as YamlNode | null)?.range?.[0] ?? 0);
        const name = isScalar(pair.key) ? String(pair.key.value) : JSON.stringify(pair.key);
        problems.push({
          path: "",
          line: position.line,
          column: position.col,
          message: `key "${name}" appears twice in this mapping: keep one`,
        });
      }
    },
  });
  if (problems.length > 0) throw new InvalidTaskSpecError(source, problems);
}

function sortProblems(problems: TaskSpecProblem[]): TaskSpecProblem[] {
  return problems.sort((left, right) => left.line - right.line || left.column - right.column);
}

/**
 * Reads and parses a task spec file (YAML or JSON). Files over {@link MAX_TASK_SPEC_BYTES} are
 * refused before they are read.
 *
 * @example
 * const spec = await loadTaskSpec("tasks/rate-limit/handover.yaml");
 */
export async function loadTaskSpec(path: string, options: Omit<ParseTaskSpecOptions, "source"> = {}): Promise<TaskSpec> {
  if (typeof path !== "string" || path === "") throw new InvalidArgumentError("path", "expected the path of a task spec file");
  // One open, then a read of at most one byte over the limit: a file that grows after the check,
  // or a device or FIFO (whose size says 0), can never make it read more.
  let size: number;
  let content: Buffer;
  try {
    const handle = await open(path, "r");
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw Object.assign(new Error("not a regular file"), { code: "not a regular file" });
      const buffer = Buffer.alloc(MAX_TASK_SPEC_BYTES + 1);
      let read = 0;
      for (;;) {
        const { bytesRead } = await handle.read(buffer, read, buffer.length - read, read);
        if (bytesRead === 0) break;
        read += bytesRead;
        if (read === buffer.length) break;
      }
      size = read > MAX_TASK_SPEC_BYTES ? Math.max(info.size, read) : read;
      content = buffer.subarray(0, read);
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw new InvalidArgumentError("path", `cannot read task spec ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, {
      cause: error,
    });
  }
  if (size > MAX_TASK_SPEC_BYTES) {
    throw new InvalidTaskSpecError(path, [
      {
        path: "",
        line: 0,
        column: 0,
        message: `is ${size} bytes, over the ${MAX_TASK_SPEC_BYTES}-byte limit for a task spec: split the task`,
      },
    ]);
  }
  return parseTaskSpec(content.toString("utf8"), { ...options, source: path });
}

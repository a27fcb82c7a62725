import { BulkheadError, errorMarker } from "./bulkhead-error.js";

/** One thing wrong with a task spec, located in its source. */
export interface TaskSpecProblem {
  /** The key path in the file's own (snake_case) keys, e.g. `context_scope.max_files`. */
  path: string;
  /** 1-based line, or 0 when the problem has no position (e.g. the file is too large). */
  line: number;
  /** 1-based column, or 0 when the problem has no position. */
  column: number;
  /** What is wrong and what is expected. */
  message: string;
}

/** A task spec failed to parse or validate. `problems` lists every problem, in source order. */
export class InvalidTaskSpecError extends BulkheadError<{ source: string; problems: readonly TaskSpecProblem[] }> {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("InvalidTaskSpecError");

  readonly source: string;
  readonly problems: readonly TaskSpecProblem[];

  constructor(source: string, problems: readonly TaskSpecProblem[]) {
    const lines = problems.map((problem) => formatTaskSpecProblem(source, problem));
    const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    super("INVALID_TASK_SPEC", `invalid task spec ${source} (${count}):\n${lines.join("\n")}`, {
      data: { source, problems },
    });
    this.name = "InvalidTaskSpecError";
    this.source = source;
    this.problems = problems;
  }
}

/** `handover.yaml:7:5 context_scope.max_files: expected a positive integer, got "fifteen"` */
export function formatTaskSpecProblem(source: string, problem: TaskSpecProblem): string {
  const position = problem.line > 0 ? `${source}:${problem.line}:${problem.column}` : source;
  const key = problem.path === "" ? "" : ` ${problem.path}:`;
  return `${position}${key} ${problem.message}`;
}

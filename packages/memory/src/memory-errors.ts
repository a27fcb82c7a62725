import { BulkheadError, errorMarker } from "@bulkhead/core";

/** One thing wrong with a memory entry file, located in it. */
export interface MemoryProblem {
  /** The file (or the name given as `source`). */
  source: string;
  /** 1-based line in the file, or 0 when the problem has no position (e.g. the file is too large). */
  line: number;
  /** 1-based column, or 0. */
  column: number;
  /** The key path in the file's own (snake_case) keys, e.g. `applies[0].repo`; empty for the whole file. */
  path: string;
  /** What is wrong and what is expected. */
  message: string;
}

/** `memory/m-1.md:4:3 applies[0].repo: expected a repo name, got "a b"` */
export function formatMemoryProblem(problem: MemoryProblem): string {
  const position = problem.line > 0 ? `${problem.source}:${problem.line}:${problem.column}` : problem.source;
  return `${position}${problem.path === "" ? "" : ` ${problem.path}:`} ${problem.message}`;
}

/** A memory entry file failed to parse or validate; `problems` lists each one with its line. */
export class InvalidMemoryEntryError extends BulkheadError {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("InvalidMemoryEntryError");

  readonly problems: readonly MemoryProblem[];

  constructor(source: string, problems: readonly MemoryProblem[]) {
    super(
      "INVALID_MEMORY_ENTRY",
      `invalid memory entry ${source}: ${problems.map(formatMemoryProblem).join("; ")}: fix the file or drop the entry`,
      { data: { source, problems } },
    );
    this.name = "InvalidMemoryEntryError";
    this.problems = problems;
  }
}

/** No entry with this id is in the store. */
export class MemoryEntryNotFoundError extends BulkheadError {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("MemoryEntryNotFoundError");

  constructor(id: string) {
    super("MEMORY_ENTRY_NOT_FOUND", `no memory entry "${id}": see bulkhead memory list`, { data: { id } });
    this.name = "MemoryEntryNotFoundError";
  }
}

/** A change to memory was refused: the entry is already decided, dropped, or would be accepted by its own proposer. */
export class MemoryRefusedError extends BulkheadError {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("MemoryRefusedError");

  constructor(id: string, reason: string) {
    super("MEMORY_REFUSED", `memory entry "${id}": ${reason}`, { data: { id, reason } });
    this.name = "MemoryRefusedError";
  }
}

import { resolve } from "node:path";
import type { ResolvedScope, TaskSpec, TokenCounter } from "@bulkhead/core";
import {
  createFileMemoryStore,
  formatMemoryProblem,
  renderMemorySection,
  selectMemory,
  writeMemoryInstructions,
  type MemorySelection,
  type MemoryStore,
} from "@bulkhead/memory";

/**
 * The memory directory every `bulkhead` command reads: `--dir`, else `$BULKHEAD_MEMORY_DIR`, else
 * `memory` (reviewed and committed with the workspace). `bulkhead memory accept` and `dispatch`
 * therefore see the same entries without being told twice.
 */
export function memoryDirOf(flag: unknown): string {
  return resolveMemoryDir(flag).dir;
}

/**
 * The memory directory and whether someone named it (`--dir` or `$BULKHEAD_MEMORY_DIR`) or it is
 * the default `memory` of the working directory, which may be a folder of the user's own that
 * has nothing to do with bulkhead (see {@link describeDispatchMemory}).
 */
export function resolveMemoryDir(flag: unknown): { dir: string; named: boolean } {
  if (typeof flag === "string" && flag !== "") return { dir: flag, named: true };
  const fromEnvironment = process.env.BULKHEAD_MEMORY_DIR;
  if (fromEnvironment !== undefined && fromEnvironment !== "") return { dir: fromEnvironment, named: true };
  return { dir: "memory", named: false };
}

/** What `dispatch` records of the memory it gave the agent (in the dispatch record, for harvest). */
export interface DispatchMemoryRecord {
  /** The memory directory, absolute. */
  dir: string;
  /** Ids of the entries in the prompt and the instruction files, most specific first. */
  given: string[];
  /** Ids of entries that apply to the task but did not fit the memory share, in rank order. */
  notFitted: string[];
  /** Tokens of the memory section, counted in the context-read check with the scope. */
  tokens: number;
  /** The memory share, in tokens. */
  budget: number;
  /** The instruction files written into the workspace, and those left alone (a user's or a link). */
  instructions: { written: string[]; skipped: { path: string; reason: string }[] };
  /** Malformed entry files, by path and line: skipped, never given. */
  problems: string[];
  /**
   * The context read the budget was checked with: the scope's tokens plus the memory section's
   * (`memory` = `tokens`), against the context-read limit the share came from.
   */
  contextRead: { scope: number; memory: number; total: number; limit: number };
}

/** The memory step of one dispatch, before the session exists: the selection and its prompt section. */
export interface DispatchMemory {
  selection: MemorySelection;
  /** The prompt's memory section (`renderMemorySection`), "" when nothing applies. */
  section: string;
  /** Malformed entry files, formatted with path and line. */
  problems: string[];
  /**
   * A default `memory` directory (not named by `--dir` or `$BULKHEAD_MEMORY_DIR`) that holds no
   * valid entry but files that do not parse: likely a folder of the user's own. Its problems are
   * logged as one line, not one per file on every dispatch.
   */
  unrelated: boolean;
  /** What the context-read check counts: the scope's tokens plus the memory section's. */
  contextTokens: number;
  /**
   * Once the session exists and before the agent starts: writes the same section as the
   * workspace's generated `CLAUDE.md` / `AGENTS.md`, counts one use of each given entry, and
   * returns what to record.
   */
  give(workspace: string): Promise<DispatchMemoryRecord>;
}

/**
 * Selects the project memory for a task about to be dispatched: lists the store, picks what
 * applies to the spec and its resolved scope within the memory share (what the scope leaves of
 * the context-read limit, at most `share` of it), and renders the prompt section. The caller
 * adds `selection.tokens` to the scope's tokens in its context check.
 *
 * @example
 * const memory = await prepareDispatchMemory({ dir: memoryDirOf(undefined), spec, scope, counter });
 * budget.checkContext(scope.totals.tokens + memory.selection.tokens);
 */
export async function prepareDispatchMemory({
  dir,
  named = true,
  store = createFileMemoryStore(dir),
  spec,
  scope,
  counter,
  now = new Date(),
}: {
  dir: string;
  /** Whether `dir` was named by the user (`--dir`, `$BULKHEAD_MEMORY_DIR`) rather than defaulted. @default true */
  named?: boolean;
  /** @default the file store in `dir` */
  store?: MemoryStore;
  spec: TaskSpec;
  scope: Pick<ResolvedScope, "files" | "totals">;
  counter: TokenCounter;
  now?: Date;
}): Promise<DispatchMemory> {
  const { entries, usage, problems } = await store.list();
  const selection = await selectMemory({ entries, usage, spec, scope, counter, now });
  const section = renderMemorySection(selection);
  const formatted = problems.map(formatMemoryProblem);
  const contextTokens = scope.totals.tokens + selection.tokens;
  const contextRead = { scope: scope.totals.tokens, memory: selection.tokens, total: contextTokens, limit: selection.contextRead };
  return {
    selection,
    section,
    problems: formatted,
    unrelated: !named && entries.length === 0 && problems.length > 0,
    contextTokens,
    async give(workspace) {
      const instructions = await writeMemoryInstructions({ directory: workspace, selection });
      const given = selection.selected.map((item) => item.entry.id);
      if (given.length > 0) await store.recordUse(given, now.toISOString());
      return {
        dir: resolve(dir),
        given,
        notFitted: [...selection.notFitted],
        tokens: selection.tokens,
        budget: selection.budget,
        instructions,
        problems: formatted,
        contextRead,
      };
    },
  };
}

/**
 * The dispatch log lines for the memory step: what was given, and each malformed entry file by
 * path and line. A default `memory` directory with no valid entry (a folder of the user's own,
 * most likely) gets one line instead of one per file, on every dispatch.
 */
export function describeDispatchMemory(memory: DispatchMemory): string[] {
  const { selection } = memory;
  const notFitted = selection.notFitted.length === 0 ? "" : `; did not fit: ${selection.notFitted.join(", ")}`;
  const given = `memory: ${selection.selected.length} entries, ${selection.tokens} of ${selection.budget} tokens${notFitted}`;
  if (memory.unrelated) {
    const count = memory.problems.length;
    return [
      given,
      `memory: the default directory ./memory holds no valid memory entry and ${count} file${count === 1 ? "" : "s"} that do not parse (first: ${memory.problems[0]}): none is used; if it is project memory, run \`bulkhead memory list --dir memory\` to see each problem, else pass --dir or set BULKHEAD_MEMORY_DIR to the memory directory`,
    ];
  }
  return [given, ...memory.problems.map((problem) => `memory: skipped ${problem}`)];
}

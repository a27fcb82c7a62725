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
  return typeof flag === "string" && flag !== "" ? flag : (process.env.BULKHEAD_MEMORY_DIR ?? "memory");
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
}

/** The memory step of one dispatch, before the session exists: the selection and its prompt section. */
export interface DispatchMemory {
  selection: MemorySelection;
  /** The prompt's memory section (`renderMemorySection`), "" when nothing applies. */
  section: string;
  /** Malformed entry files, formatted with path and line. */
  problems: string[];
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
  store = createFileMemoryStore(dir),
  spec,
  scope,
  counter,
  now = new Date(),
}: {
  dir: string;
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
  return {
    selection,
    section,
    problems: formatted,
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
      };
    },
  };
}

/** The dispatch log lines for the memory step. */
export function describeDispatchMemory(memory: DispatchMemory): string[] {
  const { selection } = memory;
  const notFitted = selection.notFitted.length === 0 ? "" : `; did not fit: ${selection.notFitted.join(", ")}`;
  return [
    `memory: ${selection.selected.length} entries, ${selection.tokens} of ${selection.budget} tokens${notFitted}`,
    ...memory.problems.map((problem) => `memory: skipped ${problem}`),
  ];
}

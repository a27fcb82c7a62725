import { lstatSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { InvalidArgumentError, throwIfAborted, withFileLock, writeFileAtomic } from "@bulkhead/core";
import { InvalidMemoryEntryError, MemoryEntryNotFoundError, type MemoryProblem } from "./memory-errors.js";
import { MAX_MEMORY_ENTRY_BYTES, MEMORY_ID_PATTERN, type MemoryEntry } from "./memory-entry.js";
import { checkMemoryEntry } from "./check-memory-entry.js";
import { parseMemoryEntry, renderMemoryEntry } from "./parse-memory-entry.js";

/** How often an entry was given to an agent, and when last. Kept beside the entries, not in them. */
export interface MemoryUsage {
  uses: number;
  lastUsedAt?: string;
}

/** What {@link MemoryStore.list} found: the entries that parsed, and every file that did not. */
export interface MemoryListing {
  /** Sorted by id. */
  entries: MemoryEntry[];
  /** One per malformed file, with its path and line; those files are never in `entries`. */
  problems: MemoryProblem[];
  /** Entry id → its use; entries never given to an agent are absent. */
  usage: Record<string, MemoryUsage>;
}

/**
 * Where project memory lives. Files in a workspace directory today ({@link createFileMemoryStore});
 * a PostgreSQL store implements the same interface and passes the same conformance suite.
 * `update` is a compare-and-set: `change` runs on the current entry with no other write between.
 */
export interface MemoryStore {
  /** Every entry; a malformed one is reported in `problems` and skipped, never returned. */
  list(options?: { abortSignal?: AbortSignal }): Promise<MemoryListing>;
  /** One entry, or undefined; a malformed file throws {@link InvalidMemoryEntryError}. */
  get(id: string): Promise<MemoryEntry | undefined>;
  /** Adds an entry unless its id exists (a re-proposal is a no-op): `"created"` or `"exists"`. */
  create(entry: MemoryEntry): Promise<"created" | "exists">;
  /** Replaces an entry with `change(current)`; throws {@link MemoryEntryNotFoundError} when there is none. */
  update(id: string, change: (current: MemoryEntry) => MemoryEntry): Promise<MemoryEntry>;
  /** Counts one use of each entry at `at` (an ISO time): the entries an agent was given. */
  recordUse(ids: readonly string[], at: string): Promise<void>;
}

function checkId(id: string): string {
  if (typeof id !== "string" || !MEMORY_ID_PATTERN.test(id))
    throw new InvalidArgumentError("id", `"${String(id)}" is not a memory entry id`);
  return id;
}

/** A store in memory: for tests, and to run the conformance suite beside the file store. */
export function createVolatileMemoryStore(initial: readonly MemoryEntry[] = []): MemoryStore {
  const entries = new Map<string, MemoryEntry>();
  const usage = new Map<string, MemoryUsage>();
  for (const entry of initial) entries.set(entry.id, checkMemoryEntry(entry, "initial"));
  let tail: Promise<unknown> = Promise.resolve();
  const exclusive = <TResult>(work: () => Promise<TResult> | TResult): Promise<TResult> => {
    const run = tail.then(work, work);
    tail = run.catch(() => undefined);
    return run;
  };
  return {
    list: async ({ abortSignal } = {}) => {
      throwIfAborted(abortSignal, "list");
      return {
        entries: [...entries.values()].sort((left, right) => (left.id < right.id ? -1 : 1)).map((entry) => structuredClone(entry)),
        problems: [],
        usage: Object.fromEntries([...usage].map(([id, use]) => [id, { ...use }])),
      };
    },
    get: async (id) => structuredClone(entries.get(checkId(id))),
    create: (entry) =>
      exclusive(() => {
        const valid = checkMemoryEntry(entry, "entry");
        if (entries.has(valid.id)) return "exists" as const;
        entries.set(valid.id, valid);
        return "created" as const;
      }),
    update: (id, change) =>
      exclusive(() => {
        const current = entries.get(checkId(id));
        if (!current) throw new MemoryEntryNotFoundError(id);
        const next = checkMemoryEntry(change(structuredClone(current)), "change");
        if (next.id !== id) throw new InvalidArgumentError("change", `an update may not change the id ("${id}" → "${next.id}")`);
        entries.set(id, next);
        return structuredClone(next);
      }),
    recordUse: (ids, at) =>
      exclusive(() => {
        // Every id first: a bad one counts nothing, not the ids before it.
        for (const id of ids) checkId(id);
        for (const id of ids) {
          const use = usage.get(id) ?? { uses: 0 };
          usage.set(id, { uses: use.uses + 1, lastUsedAt: at });
        }
      }),
  };
}

const USAGE_FILE = ".usage.json";
const ENTRY_FILE = /^[a-z0-9][a-z0-9-]{2,63}\.md$/;

/**
 * A store of one Markdown file per entry in `directory` (`<id>.md`, YAML front matter), meant to
 * be reviewed and committed with the code. Writes are atomic (temporary file, then rename) under
 * a lock directory beside the entries, so several processes can share it. How often each entry
 * was used lives in `.usage.json` beside them, so a use never rewrites a reviewed file.
 *
 * @example
 * const store = createFileMemoryStore(".bulkhead/memory");
 * const { entries, problems } = await store.list();
 */
export function createFileMemoryStore(directory: string): MemoryStore {
  if (typeof directory !== "string" || directory === "")
    throw new InvalidArgumentError("directory", "expected the directory to keep memory entries in");
  const fileOf = (id: string) => join(directory, `${checkId(id)}.md`);
  const exclusive = <TResult>(work: () => Promise<TResult>) => withFileLock(join(directory, ".lock"), work);

  /** Reads one entry file: a regular file within the size limit, whose id matches its name. */
  const readEntry = (name: string): MemoryEntry | undefined => {
    const path = join(directory, name);
    let info;
    try {
      info = lstatSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
    if (!info.isFile())
      throw new InvalidMemoryEntryError(path, [
        problemAt(path, "is not a regular file (a link or a directory): replace it with the entry's file"),
      ]);
    if (info.size > MAX_MEMORY_ENTRY_BYTES)
      throw new InvalidMemoryEntryError(path, [
        problemAt(path, `is ${info.size} bytes, over the ${MAX_MEMORY_ENTRY_BYTES}-byte limit for an entry: shorten it`),
      ]);
    const entry = parseMemoryEntry(readFileSync(path, "utf8"), { source: path });
    if (`${entry.id}.md` !== name)
      throw new InvalidMemoryEntryError(path, [
        {
          source: path,
          line: 2,
          column: 1,
          path: "id",
          message: `is "${entry.id}", but the file is ${name}: rename the file or fix the id`,
        },
      ]);
    return entry;
  };

  const readUsage = (): { usage: Record<string, MemoryUsage>; problem?: MemoryProblem } => {
    const path = join(directory, USAGE_FILE);
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch {
      return { usage: {} };
    }
    try {
      const parsed = JSON.parse(text) as Record<string, { uses?: unknown; last_used_at?: unknown }>;
      const usage: Record<string, MemoryUsage> = {};
      for (const [id, value] of Object.entries(parsed)) {
        if (!MEMORY_ID_PATTERN.test(id) || typeof value?.uses !== "number" || !(value.uses >= 0)) continue;
        usage[id] = { uses: Math.floor(value.uses), ...(typeof value.last_used_at === "string" ? { lastUsedAt: value.last_used_at } : {}) };
      }
      return { usage };
    } catch (error) {
      // Use counts only order entries of equal standing: a torn file is reported and starts over.
      return { usage: {}, problem: problemAt(path, `is not JSON (${(error as Error).message}): use counts start from zero`) };
    }
  };

  return {
    async list({ abortSignal } = {}) {
      throwIfAborted(abortSignal, "list");
      let names: string[];
      try {
        names = readdirSync(directory)
          .filter((name) => ENTRY_FILE.test(name))
          .sort();
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return { entries: [], problems: [], usage: {} };
        throw error;
      }
      const entries: MemoryEntry[] = [];
      const problems: MemoryProblem[] = [];
      for (let index = 0; index < names.length; index++) {
        // Small files read synchronously are fastest; yield now and then so an abort is seen.
        if (index % 256 === 255) {
          await new Promise((resolve) => setImmediate(resolve));
          throwIfAborted(abortSignal, "list");
        }
        try {
          const entry = readEntry(names[index]!);
          if (entry) entries.push(entry);
        } catch (error) {
          if (!InvalidMemoryEntryError.isInstance(error)) throw error;
          problems.push(...error.problems);
        }
      }
      const { usage, problem } = readUsage();
      if (problem) problems.push(problem);
      return { entries, problems, usage };
    },
    get: async (id) => readEntry(`${checkId(id)}.md`),
    create: async (entry) => {
      const valid = checkMemoryEntry(entry, "entry");
      return exclusive(async () => {
        if (readEntryQuietly(readEntry, valid.id) !== "absent") return "exists" as const;
        await writeFileAtomic(fileOf(valid.id), renderMemoryEntry(valid));
        return "created" as const;
      });
    },
    update: (id, change) =>
      exclusive(async () => {
        const current = readEntry(`${checkId(id)}.md`);
        if (!current) throw new MemoryEntryNotFoundError(id);
        const next = checkMemoryEntry(change(structuredClone(current)), "change");
        if (next.id !== id) throw new InvalidArgumentError("change", `an update may not change the id ("${id}" → "${next.id}")`);
        await writeFileAtomic(fileOf(id), renderMemoryEntry(next));
        return next;
      }),
    recordUse: async (ids, at) => {
      for (const id of ids) checkId(id);
      return exclusive(async () => {
        const { usage } = readUsage();
        for (const id of ids) usage[id] = { uses: (usage[id]?.uses ?? 0) + 1, lastUsedAt: at };
        const file = Object.fromEntries(
          Object.keys(usage)
            .sort()
            .map((id) => [id, { uses: usage[id]!.uses, ...(usage[id]!.lastUsedAt ? { last_used_at: usage[id]!.lastUsedAt } : {}) }]),
        );
        await writeFileAtomic(join(directory, USAGE_FILE), `${JSON.stringify(file, null, 2)}\n`);
      });
    },
  };
}

function problemAt(source: string, message: string): MemoryProblem {
  return { source, line: 0, column: 0, path: "", message };
}

/** Whether an id is taken: a malformed file counts as taken, so it is never overwritten unseen. */
function readEntryQuietly(read: (name: string) => MemoryEntry | undefined, id: string): "present" | "absent" {
  try {
    return read(`${id}.md`) ? "present" : "absent";
  } catch {
    return "present";
  }
}

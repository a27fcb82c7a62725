import { InvalidArgumentError } from "@bulkhead/core";
import { MEMORY_ID_PATTERN, type MemoryEntry } from "./memory-entry.js";
import { parseMemoryEntry, renderMemoryEntry } from "./parse-memory-entry.js";

/**
 * Validates an entry the way a store holds it: rendered to its file text, then parsed back with
 * every limit, so every store (files, PostgreSQL) accepts exactly what a reviewed file may say.
 * Returns the entry as parsed; throws `InvalidArgumentError` (no id, or not renderable) or
 * `InvalidMemoryEntryError` (with the line of each problem).
 *
 * @example
 * const valid = checkMemoryEntry(entry, "entry");
 */
export function checkMemoryEntry(entry: MemoryEntry, parameter: string): MemoryEntry {
  if (typeof entry !== "object" || entry === null || !MEMORY_ID_PATTERN.test(String(entry.id)))
    throw new InvalidArgumentError(parameter, `expected a memory entry with an id matching ${MEMORY_ID_PATTERN}`);
  let text: string;
  try {
    text = renderMemoryEntry(entry);
  } catch (error) {
    throw new InvalidArgumentError(parameter, `cannot render entry "${entry.id}": ${(error as Error).message}`, { cause: error });
  }
  return parseMemoryEntry(text, { source: `${entry.id}.md` });
}

import { LineCounter, parseDocument, stringify, type Document } from "yaml";
import { formatYamlPath, locateYamlPath } from "@bulkhead/core";
import type { z } from "zod";
import { InvalidMemoryEntryError, type MemoryProblem } from "./memory-errors.js";
import {
  MAX_MEMORY_BODY_CHARS,
  MAX_MEMORY_ENTRY_BYTES,
  memoryEntryFileSchema,
  memoryEntryFromFile,
  memoryEntryToFile,
  type MemoryEntry,
} from "./memory-entry.js";

/** Most YAML aliases expanded in front matter: an entry needs none. */
const MAX_ALIAS_COUNT = 8;

type Path = readonly PropertyKey[];

const formatPath = formatYamlPath;
// Front matter starts on the file's second line, after its `---`.
const locate = (document: Document, lines: LineCounter, path: Path, lineOffset: number, unknownKey?: string) =>
  locateYamlPath(document, lines, path, { lineOffset, ...(unknownKey === undefined ? {} : { unknownKey }) });

/**
 * Parses one entry file: YAML front matter between `---` lines, then a Markdown body. Checks
 * every field, and throws {@link InvalidMemoryEntryError} listing each problem with the file's
 * line and column. Files over {@link MAX_MEMORY_ENTRY_BYTES} are refused before parsing; the
 * front matter is found with one forward scan, so parsing is linear in the file's size.
 *
 * @example
 * const entry = parseMemoryEntry(await readFile(".bulkhead/memory/m-1a2b3c.md", "utf8"), { source: "m-1a2b3c.md" });
 */
export function parseMemoryEntry(text: string, { source = "entry.md" }: { source?: string } = {}): MemoryEntry {
  const problem = (message: string, line = 0, column = 0, path = ""): MemoryProblem => ({ source, line, column, path, message });
  const fail = (message: string, line = 0, column = 0): never => {
    throw new InvalidMemoryEntryError(source, [problem(message, line, column)]);
  };
  if (typeof text !== "string") fail("expected the entry's text");
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > MAX_MEMORY_ENTRY_BYTES) fail(`is ${bytes} bytes, over the ${MAX_MEMORY_ENTRY_BYTES}-byte limit for an entry: shorten it`);
  const normalized = text.replaceAll("\r\n", "\n");
  if (!normalized.startsWith("---\n")) fail('expected front matter: the first line must be "---"', 1, 1);
  // The closing fence: the first line that is exactly "---" after the opening one.
  let close = normalized.indexOf("\n---", 3);
  while (close !== -1 && normalized[close + 4] !== "\n" && close + 4 !== normalized.length) close = normalized.indexOf("\n---", close + 1);
  if (close === -1) fail('the front matter is not closed: add a line "---" after it', 1, 1);
  const yamlText = normalized.slice(4, close + 1);
  const body = normalized.slice(close + 5).trim();
  if (body.length > MAX_MEMORY_BODY_CHARS) {
    const bodyLine = normalized.slice(0, close + 5).split("\n").length;
    fail(`the body is ${body.length} characters, over ${MAX_MEMORY_BODY_CHARS}: shorten it`, bodyLine, 1);
  }

  const lines = new LineCounter();
  const document = parseDocument(yamlText, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, strict: true });
  if (document.errors.length > 0) {
    throw new InvalidMemoryEntryError(
      source,
      document.errors.map((error) => {
        const position = lines.linePos(error.pos[0]);
        return problem(`not valid YAML: ${error.message.split("\n")[0]}`, position.line + 1, position.col);
      }),
    );
  }
  let raw: unknown;
  try {
    raw = document.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    fail(`refused: ${(error as Error).message} (an entry needs no YAML aliases)`, 2, 1);
  }
  const result = memoryEntryFileSchema().safeParse(raw ?? undefined);
  if (!result.success) {
    const problems: MemoryProblem[] = [];
    for (const issue of (result.error as z.ZodError).issues) {
      if (issue.code === "unrecognized_keys") {
        for (const key of issue.keys) {
          const at = locate(document, lines, issue.path, 1, key);
          problems.push(problem("unknown key", at.line, at.column, formatPath([...issue.path, key])));
        }
        continue;
      }
      const at = locate(document, lines, issue.path, 1);
      problems.push(problem(issue.message, at.line, at.column, formatPath(issue.path)));
    }
    throw new InvalidMemoryEntryError(
      source,
      problems.sort((left, right) => left.line - right.line || left.column - right.column),
    );
  }
  const file = result.data;
  const misplaced = [
    ...(file.kind === "decision" ? [] : (["why", "decided_by"] as const).filter((key) => file[key] !== undefined)),
    ...(file.kind === "learning" ? [] : (["learning", "found_in"] as const).filter((key) => file[key] !== undefined)),
  ];
  if (misplaced.length > 0) {
    throw new InvalidMemoryEntryError(
      source,
      misplaced.map((key) => {
        const at = locate(document, lines, [], 1, key);
        return problem(
          `belongs to a ${key === "why" || key === "decided_by" ? "decision" : "learning"}, not a ${file.kind}`,
          at.line,
          at.column,
          key,
        );
      }),
    );
  }
  return memoryEntryFromFile(file, body);
}

/**
 * Renders an entry as its file: YAML front matter (keys in a fixed order, no line folding) and
 * the body. `parseMemoryEntry(renderMemoryEntry(entry))` equals `entry`.
 *
 * @example
 * await writeFile(`.bulkhead/memory/${entry.id}.md`, renderMemoryEntry(entry));
 */
export function renderMemoryEntry(entry: MemoryEntry): string {
  const front = stringify(memoryEntryToFile(entry), { lineWidth: 0 });
  return `---\n${front}---\n${entry.body === "" ? "" : `\n${entry.body}\n`}`;
}

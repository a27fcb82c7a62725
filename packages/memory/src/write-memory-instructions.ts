import { closeSync, constants, lstatSync, openSync, readSync } from "node:fs";

import { join } from "node:path";
import { InvalidArgumentError, writeFileAtomic } from "@bulkhead/core";
import { renderMemorySection } from "./render-memory-section.js";
import type { MemorySelection } from "./select-memory.js";

/** The first line of every instructions file bulkhead writes; a file without it is the user's and is never touched. */
export const GENERATED_MEMORY_MARKER = "<!-- bulkhead:memory generated file: do not edit, it is rewritten for every task -->";

/** File names an agent reads instructions from: Claude Code reads `CLAUDE.md`, Codex and others `AGENTS.md`. */
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\.md$/;

export interface WriteMemoryInstructionsOptions {
  /** The directory the agent starts in or above it: the session's workspace root, which bulkhead creates. */
  directory: string;
  selection: Pick<MemorySelection, "selected">;
  /** Which files to write there. @default ["CLAUDE.md", "AGENTS.md"] */
  files?: readonly string[];
}

/** What was written, and what was left alone and why. */
export interface MemoryInstructionsResult {
  written: string[];
  skipped: { path: string; reason: string }[];
}

/**
 * Writes the memory section as read-only instruction files (`CLAUDE.md`, `AGENTS.md`) for agents
 * that read files rather than a prompt. The content is exactly {@link renderMemorySection} of the
 * selection, so it is bounded by the same share. A file that exists and does not start with
 * {@link GENERATED_MEMORY_MARKER} is the user's: it is skipped, never edited; a link is skipped
 * too. Each file is written to a new temporary file (no links followed) and renamed into place,
 * mode 0444. Write it before the agent starts: the workspace is the agent's afterwards.
 *
 * @example
 * await writeMemoryInstructions({ directory: session.state.workspace, selection });
 */
export async function writeMemoryInstructions(options: WriteMemoryInstructionsOptions): Promise<MemoryInstructionsResult> {
  const { directory, selection, files = ["CLAUDE.md", "AGENTS.md"] } = options ?? ({} as WriteMemoryInstructionsOptions);
  if (typeof directory !== "string" || directory === "")
    throw new InvalidArgumentError("options.directory", "expected the workspace directory");
  if (!Array.isArray(selection?.selected)) throw new InvalidArgumentError("options.selection", "expected a selection from selectMemory");
  const bad = files.find((name) => typeof name !== "string" || !FILE_NAME.test(name));
  if (bad !== undefined) throw new InvalidArgumentError("options.files", `"${String(bad)}" is not a file name like CLAUDE.md`);
  const info = lstatSync(directory, { throwIfNoEntry: false });
  if (!info?.isDirectory()) throw new InvalidArgumentError("options.directory", `${directory} is not a directory (or is a link)`);

  const section = renderMemorySection(selection);
  const content = `${GENERATED_MEMORY_MARKER}\n\n${section === "" ? "No project memory applies to this task.\n" : section}`;
  const result: MemoryInstructionsResult = { written: [], skipped: [] };
  for (const name of files) {
    const path = join(directory, name);
    const found = lstatSync(path, { throwIfNoEntry: false });
    if (found && !found.isFile()) {
      result.skipped.push({ path, reason: "exists and is not a regular file (a link or a directory): left alone" });
      continue;
    }
    if (found && !startsWithMarker(path)) {
      result.skipped.push({ path, reason: "exists and was not written by bulkhead: the user's file is never edited" });
      continue;
    }
    // The temporary file is created exclusively (O_EXCL: a name planted there is refused, never followed).
    await writeFileAtomic(path, content, { mode: 0o444, fsync: false });
    result.written.push(path);
  }
  return result;
}

/** Reads only the first bytes: a user's file may be large. */
function startsWithMarker(path: string): boolean {
  const marker = Buffer.from(GENERATED_MEMORY_MARKER, "utf8");
  const buffer = Buffer.alloc(marker.length);
  let descriptor: number | undefined;
  try {
    descriptor = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    return readSync(descriptor, buffer, 0, buffer.length, 0) === buffer.length && buffer.equals(marker);
  } catch {
    return false;
  } finally {
    if (descriptor !== undefined) closeSync(descriptor);
  }
}

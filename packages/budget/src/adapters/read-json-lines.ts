// Internal: the line loop of the agent-output meters (Claude Code stream-json, Codex exec --json).
import { splitLines } from "./split-lines.js";

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Calls `onEvent` with each JSON object line of `lines` and its 1-based number. Blank lines are
 * passed over; a line that is not JSON, not an object, or that `onEvent` refuses (returns
 * `false`) is skipped and its number recorded in `skippedLines`.
 */
export async function readJsonLines(
  lines: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>,
  skippedLines: number[],
  onEvent: (event: Json, number: number) => boolean | void,
): Promise<void> {
  let number = 0;
  for await (const line of splitLines(lines)) {
    number++;
    if (line.trim() === "") continue;
    let event: unknown;
    try {
      event = JSON.parse(line);
    } catch {
      skippedLines.push(number);
      continue;
    }
    if (!isObject(event) || onEvent(event, number) === false) skippedLines.push(number);
  }
}

import { addUsage, emptyUsage, type Usage } from "@bulkhead/core";
import type { Budget } from "../create-budget.js";
import type { Tracker } from "../create-tracker.js";
import { normalizeUsage, usageOnly } from "../normalize-usage.js";
import { readJsonLines } from "./read-json-lines.js";
import { createStopCheck } from "./stop-reason.js";

export interface MeterCodexStreamOptions {
  budget?: Budget;
  tracker?: Tracker;
  /** The repo and operation the usage is attributed to. @default "default", "agent" */
  repo?: string;
  operation?: string;
  /**
   * The model the run uses (`-m` or `model` in `config.toml`): `exec --json` does not name it.
   * With it, each turn is priced into the budget and the tracker (an unknown model never throws).
   */
  model?: string;
  /** Called once when the budget runs out: stop the `codex` process (e.g. `child.kill()`). */
  onStop?: (reason: "generation" | "session-total" | "usd") => void;
}

/** What a Codex run consumed and how it ended. */
export interface CodexStreamResult {
  /** Summed over `turn.completed` events (Codex reports each turn's usage once). */
  usage: Usage;
  threadId: string | undefined;
  /** Turns completed, and turns that failed (`turn.failed`). */
  turns: number;
  failedTurns: number;
  /** The last `agent_message` text. */
  lastMessage: string | undefined;
  /** Completed items by type (`agent_message`, `command_execution`, `file_change`, ...). */
  items: Record<string, number>;
  /** Error messages: `error` events, failed turns, and `error` items. */
  errors: string[];
  /** Lines that were not JSON objects; skipped, counted, with their 1-based numbers. */
  skippedLines: number[];
  /** Why the budget stopped the run, or null. */
  stoppedBy: "generation" | "session-total" | "usd" | null;
}

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Meters the output of `codex exec --json` (the OpenAI Codex CLI headless): each
 * `turn.completed` usage (`input_tokens` with `cached_input_tokens` and
 * `cache_write_input_tokens` inside it, `output_tokens` with `reasoning_output_tokens` inside it)
 * is normalized as the `codex` usage source, charged to the budget and the tracker as it arrives,
 * and `onStop` is called once when the budget runs out. Malformed lines are skipped and counted.
 *
 * @example
 * const child = spawn("codex", ["exec", "--json", prompt], { stdio: ["ignore", "pipe", "inherit"] });
 * const result = await meterCodexStream(child.stdout, { budget, tracker, model: "gpt-5.1", onStop: () => child.kill() });
 */
export async function meterCodexStream(
  lines: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>,
  { budget, tracker, repo = "default", operation = "agent", model, onStop }: MeterCodexStreamOptions = {},
): Promise<CodexStreamResult> {
  const result: CodexStreamResult = {
    usage: emptyUsage(),
    threadId: undefined,
    turns: 0,
    failedTurns: 0,
    lastMessage: undefined,
    items: {},
    errors: [],
    skippedLines: [],
    stoppedBy: null,
  };
  const span = tracker?.startSpan({ repo, operation, ...(model === undefined ? {} : { model }) });
  const check = createStopCheck(budget, result, onStop);
  try {
    await readJsonLines(lines, result.skippedLines, (event) => {
      if (typeof event.type !== "string") return false;
      switch (event.type) {
        case "thread.started":
          if (typeof event.thread_id === "string") result.threadId = event.thread_id;
          break;
        case "turn.completed": {
          result.turns++;
          if (!isObject(event.usage)) break;
          const usage = usageOnly(normalizeUsage("codex", event.usage));
          result.usage = addUsage(result.usage, usage);
          span?.record(usage);
          budget?.charge({ spent: usage, ...(model === undefined ? {} : { model }) });
          check();
          break;
        }
        case "turn.failed":
          result.failedTurns++;
          if (isObject(event.error) && typeof event.error.message === "string") result.errors.push(event.error.message);
          break;
        case "error":
          if (typeof event.message === "string") result.errors.push(event.message);
          break;
        case "item.completed":
          if (isObject(event.item) && typeof event.item.type === "string") {
            const item = event.item;
            result.items[item.type as string] = (result.items[item.type as string] ?? 0) + 1;
            if (item.type === "agent_message" && typeof item.text === "string") result.lastMessage = item.text;
            if (item.type === "error" && typeof item.message === "string") result.errors.push(item.message);
          }
          break;
      }
      return true;
    });
  } finally {
    span?.end();
  }
  return result;
}

import { addUsage, emptyUsage, type Usage } from "@bulkhead/core";
import type { Budget } from "../create-budget.js";
import type { Tracker } from "../create-tracker.js";
import { normalizeUsage, usageOnly } from "../normalize-usage.js";
import { splitLines } from "./split-lines.js";
import { stopReason } from "./stop-reason.js";

export interface MeterClaudeCodeStreamOptions {
  budget?: Budget;
  tracker?: Tracker;
  /** The repo and operation the usage is attributed to. @default "default", "agent" */
  repo?: string;
  operation?: string;
  /** Called once when the budget runs out: stop the `claude` process (e.g. `child.kill()`). */
  onStop?: (reason: "generation" | "session-total" | "usd") => void;
}

/** What a Claude Code run consumed and how it ended. */
export interface ClaudeCodeStreamResult {
  /** Summed over assistant messages, each counted once, reconciled with the final result. */
  usage: Usage;
  /** `total_cost_usd` of the result line, when the run got that far. */
  costUsd: number | undefined;
  sessionId: string | undefined;
  model: string | undefined;
  /** The result line's `subtype` (`success`, `error_max_turns`, ...), or undefined if none came. */
  resultSubtype: string | undefined;
  isError: boolean;
  numTurns: number | undefined;
  /** Distinct assistant messages and tool uses seen. */
  assistantMessages: number;
  toolUses: number;
  /** The final text of the result line. */
  resultText: string | undefined;
  /** Lines that were not JSON or not an object; skipped, counted, with their 1-based numbers. */
  skippedLines: number[];
  /** Why the budget stopped the run, or null. */
  stoppedBy: "generation" | "session-total" | "usd" | null;
}

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);

function subtract(left: Usage, right: Usage): Usage {
  const difference = emptyUsage();
  for (const key of Object.keys(difference) as (keyof Usage)[]) difference[key] = Math.max(0, left[key] - right[key]);
  return difference;
}


/**
 * Meters the output of `claude -p --output-format stream-json --verbose` (Claude Code headless):
 * assistant messages are counted once per message id (Claude Code repeats a message's usage on
 * every content block), charged to the budget and the tracker as they arrive, and reconciled
 * with the final `result` line's usage and cost. When the budget runs out, `onStop` is called
 * once so the caller can stop the process. Malformed lines are skipped and counted.
 *
 * @example
 * const child = spawn("claude", ["-p", prompt, "--output-format", "stream-json", "--verbose"]);
 * const result = await meterClaudeCodeStream(child.stdout, { budget, tracker, onStop: () => child.kill() });
 */
export async function meterClaudeCodeStream(
  lines: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>,
  { budget, tracker, repo = "default", operation = "agent", onStop }: MeterClaudeCodeStreamOptions = {},
): Promise<ClaudeCodeStreamResult> {
  const result: ClaudeCodeStreamResult = {
    usage: emptyUsage(),
    costUsd: undefined,
    sessionId: undefined,
    model: undefined,
    resultSubtype: undefined,
    isError: false,
    numTurns: undefined,
    assistantMessages: 0,
    toolUses: 0,
    resultText: undefined,
    skippedLines: [],
    stoppedBy: null,
  };
  const seen = new Map<string, Usage>();
  const toolUseIds = new Set<string>();
  const span = tracker?.startSpan({ repo, operation });

  const book = (usage: Usage) => {
    if (usage.inputTokens + usage.outputTokens === 0) return;
    result.usage = addUsage(result.usage, usage);
    span?.record(usage);
    if (!budget) return;
    budget.charge(usage);
    check();
  };
  const check = () => {
    if (!budget || result.stoppedBy) return;
    const reason = stopReason(budget);
    if (reason) {
      result.stoppedBy = reason;
      onStop?.(reason);
    }
  };

  let number = 0;
  for await (const line of splitLines(lines)) {
    number++;
    if (line.trim() === "") continue;
    let event: unknown;
    try {
      event = JSON.parse(line);
    } catch {
      result.skippedLines.push(number);
      continue;
    }
    if (!isObject(event)) {
      result.skippedLines.push(number);
      continue;
    }
    if (typeof event.session_id === "string") result.sessionId = event.session_id;
    if (event.type === "system" && typeof event.model === "string") result.model = event.model;
    if (event.type === "assistant" && isObject(event.message)) {
      const message = event.message;
      if (typeof message.model === "string") result.model = message.model;
      for (const block of Array.isArray(message.content) ? message.content : []) {
        if (isObject(block) && block.type === "tool_use" && typeof block.id === "string") toolUseIds.add(block.id);
      }
      if (!isObject(message.usage)) continue;
      const id = typeof message.id === "string" ? message.id : `line-${number}`;
      const usage = usageOnly(normalizeUsage("claude-code-stream", message.usage));
      const before = seen.get(id);
      if (!before) result.assistantMessages++;
      seen.set(id, usage);
      book(before ? subtract(usage, before) : usage);
    }
    if (event.type === "result") {
      result.resultSubtype = typeof event.subtype === "string" ? event.subtype : undefined;
      result.isError = event.is_error === true;
      result.numTurns = typeof event.num_turns === "number" ? event.num_turns : undefined;
      result.costUsd = typeof event.total_cost_usd === "number" ? event.total_cost_usd : undefined;
      result.resultText = typeof event.result === "string" ? event.result : undefined;
      if (isObject(event.usage)) {
        // The result line carries the run's totals: book whatever the messages did not show.
        const total = usageOnly(normalizeUsage("claude-code-stream", event.usage));
        book(subtract(total, result.usage));
      }
      // Claude Code's own figure for the run. A budget that prices usage itself has booked the
      // dollars already; any other budget gets them from here, so a usd limit is fed.
      if (budget && result.costUsd !== undefined && result.costUsd > 0 && budget.pricedModel === undefined) {
        budget.charge({ usd: result.costUsd });
        check();
      }
    }
  }
  span?.end();
  result.toolUses = toolUseIds.size;
  return result;
}

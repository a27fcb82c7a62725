import { addUsage, emptyUsage, type Usage } from "@bulkhead/core";
import type { Budget } from "../create-budget.js";
import type { Tracker } from "../create-tracker.js";
import { normalizeUsage, usageOnly } from "../normalize-usage.js";
import { mergeUsage } from "./merge-usage.js";
import { readJsonLines } from "./read-json-lines.js";
import { createStopCheck } from "./stop-reason.js";

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
 * with `--include-partial-messages`, the `stream_event` lines' `message_start` and
 * `message_delta` usage is booked while a message is still generating (mid-run counts, thinking
 * tokens included); assistant messages are counted once per message id (Claude Code repeats a message's usage on
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
  options: MeterClaudeCodeStreamOptions = {},
): Promise<ClaudeCodeStreamResult> {
  const meter = createClaudeMeter(options);
  try {
    await readJsonLines(lines, meter.result.skippedLines, (event, number) => meter.observe(event, `line-${number}`));
  } finally {
    meter.end();
  }
  return meter.result;
}

function maxUsage(left: Usage, right: Usage): Usage {
  const result = emptyUsage();
  for (const key of Object.keys(result) as (keyof Usage)[]) result[key] = Math.max(left[key], right[key]);
  return result;
}

/**
 * Internal: the meter of Claude Code's messages, shared by the stream-json reader and the Agent
 * SDK adapter (whose messages are the same objects). `observe` takes one message; `end` once.
 */
export function createClaudeMeter({ budget, tracker, repo = "default", operation = "agent", onStop }: MeterClaudeCodeStreamOptions) {
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
  /** The most seen of each message's usage, by message id: growth is booked, never a count twice. */
  const seen = new Map<string, Usage>();
  /** Partial messages in flight (`stream_event`), by the tool use that spawned them ("" for the main agent). */
  const streaming = new Map<string, { id: string; raw: Json }>();
  const toolUseIds = new Set<string>();
  const span = tracker?.startSpan({ repo, operation });

  const check = createStopCheck(budget, result, onStop);
  const book = (usage: Usage) => {
    if (usage.inputTokens + usage.outputTokens === 0) return;
    result.usage = addUsage(result.usage, usage);
    span?.record(usage);
    if (!budget) return;
    budget.charge({ spent: usage });
    check();
  };
  const grow = (id: string, usage: Usage) => {
    const before = seen.get(id);
    if (!before) result.assistantMessages++;
    const after = before ? maxUsage(before, usage) : usage;
    seen.set(id, after);
    book(before ? subtract(after, before) : after);
  };

  const observe = (event: Json, fallbackId: string) => {
    if (typeof event.session_id === "string") result.sessionId = event.session_id;
    if (event.type === "system" && typeof event.model === "string") result.model = event.model;
    const parent = typeof event.parent_tool_use_id === "string" ? event.parent_tool_use_id : "";
    if (event.type === "stream_event" && isObject(event.event)) {
      const inner = event.event;
      if (inner.type === "message_start" && isObject(inner.message)) {
        const message = inner.message;
        if (typeof message.model === "string") result.model = message.model;
        const id = typeof message.id === "string" ? message.id : fallbackId;
        const raw = isObject(message.usage) ? { ...message.usage } : {};
        streaming.set(parent, { id, raw });
        grow(id, usageOnly(normalizeUsage("claude-code-stream", raw)));
      } else if (inner.type === "message_delta" && isObject(inner.usage)) {
        const current = streaming.get(parent);
        if (current) {
          current.raw = mergeUsage(current.raw, inner.usage);
          grow(current.id, usageOnly(normalizeUsage("claude-code-stream", current.raw)));
        }
      } else if (inner.type === "message_stop") streaming.delete(parent);
      return;
    }
    if (event.type === "assistant" && isObject(event.message)) {
      const message = event.message;
      if (typeof message.model === "string") result.model = message.model;
      for (const block of Array.isArray(message.content) ? message.content : []) {
        if (isObject(block) && block.type === "tool_use" && typeof block.id === "string") toolUseIds.add(block.id);
      }
      if (!isObject(message.usage)) return;
      grow(typeof message.id === "string" ? message.id : fallbackId, usageOnly(normalizeUsage("claude-code-stream", message.usage)));
      return;
    }
    if (event.type === "result") {
      result.resultSubtype = typeof event.subtype === "string" ? event.subtype : undefined;
      result.isError = event.is_error === true;
      result.numTurns = typeof event.num_turns === "number" ? event.num_turns : undefined;
      result.costUsd = typeof event.total_cost_usd === "number" ? event.total_cost_usd : undefined;
      result.resultText = typeof event.result === "string" ? event.result : undefined;
      // The result carries the run's totals: `usage` for the main agent, `modelUsage` per model
      // with subagents included. Book whatever the messages did not show.
      let total = isObject(event.usage) ? usageOnly(normalizeUsage("claude-code-stream", event.usage)) : emptyUsage();
      if (isObject(event.modelUsage)) {
        let byModel = emptyUsage();
        for (const entry of Object.values(event.modelUsage))
          if (isObject(entry)) byModel = addUsage(byModel, usageOnly(normalizeUsage("claude-agent-sdk", entry)));
        total = maxUsage(total, byModel);
      }
      book(subtract(total, result.usage));
      // Claude Code's own figure for the run. A budget that prices usage itself has booked the
      // dollars already; any other budget gets them from here, so a usd limit is fed.
      if (budget && result.costUsd !== undefined && result.costUsd > 0 && budget.pricedModel === undefined) {
        budget.charge({ spent: { usd: result.costUsd } });
        check();
      }
    }
  };
  let ended = false;
  return {
    result,
    observe,
    /** True once the budget asked to stop. */
    get stopped() {
      return result.stoppedBy !== null;
    },
    end() {
      if (ended) return;
      ended = true;
      span?.end();
      result.toolUses = toolUseIds.size;
    },
  };
}

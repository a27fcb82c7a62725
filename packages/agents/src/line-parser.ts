import type { AgentEvent, AgentEventParser } from "@bulkhead/core";

/** Lines longer than this are skipped whole: an agent's output is untrusted and may be huge. */
export const MAX_EVENT_LINE_BYTES = 4 * 1024 * 1024;

/**
 * A parser over JSON lines: splits chunks into lines (linear time, partial lines kept across
 * chunks, lines over {@link MAX_EVENT_LINE_BYTES} dropped), parses each as JSON, and hands
 * objects to `toEvents`. Lines that are not JSON objects (a stderr warning) are ignored.
 */
export function jsonLineParser(toEvents: (line: Record<string, unknown>) => AgentEvent[]): AgentEventParser {
  let pending = "";
  let skipping = false;
  const handle = (line: string): AgentEvent[] => {
    const text = line.trim();
    if (!text.startsWith("{")) return [];
    try {
      const value = JSON.parse(text) as unknown;
      return typeof value === "object" && value !== null && !Array.isArray(value) ? toEvents(value as Record<string, unknown>) : [];
    } catch {
      return [];
    }
  };
  return {
    push(chunk) {
      const events: AgentEvent[] = [];
      let start = 0;
      for (let newline = chunk.indexOf("\n"); newline !== -1; newline = chunk.indexOf("\n", start)) {
        const piece = chunk.slice(start, newline);
        if (!skipping && pending.length + piece.length <= MAX_EVENT_LINE_BYTES) events.push(...handle(pending + piece));
        pending = "";
        skipping = false;
        start = newline + 1;
      }
      if (!skipping) {
        pending += chunk.slice(start);
        if (pending.length > MAX_EVENT_LINE_BYTES) {
          pending = "";
          skipping = true;
        }
      }
      return events;
    },
    end() {
      const events = skipping ? [] : handle(pending);
      pending = "";
      skipping = false;
      return events;
    },
  };
}

/** One line, at most `max` characters: the first line of `text`, with `…` when cut. */
export function oneLine(text: string, max = 100): string {
  const first = text.trim().split("\n", 1)[0] ?? "";
  return first.length > max || text.trim().includes("\n") ? `${first.slice(0, max - 1)}…` : first;
}

export const asRecord = (value: unknown): Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};

export const asString = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);

export const asCount = (value: unknown): number => (typeof value === "number" && Number.isInteger(value) && value >= 0 ? value : 0);

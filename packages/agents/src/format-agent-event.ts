import type { AgentEvent } from "@bulkhead/core";
import { oneLine } from "./line-parser.js";

/**
 * One line for a person following a run (`bulkhead inject --follow`): a tool use is one line,
 * text is its first line, a result says how the run ended. Usage is the agent's own claim and is
 * shown as such.
 *
 * @example
 * formatAgentEvent({ type: "tool-use", id: "t1", name: "Write", input: {}, summary: "Write api/a.ts" }); // "→ Write api/a.ts"
 */
export function formatAgentEvent(event: AgentEvent): string {
  switch (event.type) {
    case "init":
      return `● agent session ${event.agentSessionId}${event.model ? ` (${event.model})` : ""}`;
    case "text":
      return `  ${oneLine(event.text, 160)}`;
    case "tool-use":
      return `→ ${event.summary}`;
    case "tool-result":
      return `  ${event.isError ? "✗" : "←"} ${event.summary || "(no output)"}`;
    case "usage":
      return `  usage (agent's claim): ${event.usage.inputTokens} in, ${event.usage.outputTokens} out`;
    case "result":
      return `${event.ok ? "✓" : "✗"} ${oneLine(event.text, 160)}${event.turns !== undefined ? ` (${event.turns} turns)` : ""}`;
    case "error":
      return `! ${event.message}`;
  }
}

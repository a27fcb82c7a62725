// The public API of @bulkhead/agents: one deliberate list.
export { agentImage, type AgentImage, type AgentImageOptions } from "./agent-image.js";
export { claudeCode, claudeUsage, type ClaudeCodeOptions } from "./claude-code.js";
export { codex, codexUsage, type CodexOptions } from "./codex.js";
export { commandAgent, type CommandAgentOptions } from "./command-agent.js";
export { formatAgentEvent } from "./format-agent-event.js";
export { MAX_EVENT_LINE_BYTES } from "./line-parser.js";
export {
  agentEvents,
  agentSessionIdOf,
  startAgent,
  type AgentJob,
  type AgentRun,
  type AgentSession,
  type StartAgentOptions,
} from "./start-agent.js";
export { summarizeToolUse } from "./summarize-tool-use.js";

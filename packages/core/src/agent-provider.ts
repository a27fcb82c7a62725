import type { Usage } from "./usage.js";

/**
 * One thing an agent did, parsed from its own output. For display, following a run and finding
 * its conversation again: never for accounting (the model gateway meters what went over the wire).
 */
export type AgentEvent =
  /** The agent started; `agentSessionId` is what resumes its conversation later. */
  | { readonly type: "init"; readonly agentSessionId: string; readonly model?: string; readonly tools?: readonly string[] }
  /** Text the model wrote. */
  | { readonly type: "text"; readonly text: string }
  /** A tool call: `summary` is one line for people (`Write src/a.ts`, `Bash npm test`). */
  | { readonly type: "tool-use"; readonly id: string; readonly name: string; readonly input: unknown; readonly summary: string }
  /** A tool's answer: `summary` is its first line, shortened. */
  | { readonly type: "tool-result"; readonly toolUseId: string; readonly isError: boolean; readonly summary: string }
  /** Usage the agent claims (display only: the gateway's count is the one that is booked). */
  | { readonly type: "usage"; readonly usage: Usage }
  /** The run ended: `ok` false when the agent reported an error. */
  | {
      readonly type: "result";
      readonly ok: boolean;
      readonly text: string;
      readonly agentSessionId?: string;
      readonly turns?: number;
      readonly usage?: Usage;
    }
  /** The agent reported a problem without ending (a retry, a warning). */
  | { readonly type: "error"; readonly message: string };

/** Where an agent in a session reaches its model: the gateway's base URL there, and the session's token. */
export interface AgentGatewayAccess {
  /** For example `http://127.0.0.1:4000` (the session's forwarder to the gateway). */
  readonly baseUrl: string;
  /** The per-session token the gateway checks; never the real API key. */
  readonly token: string;
}

/** What a provider is asked to run. */
export interface AgentRunRequest {
  /** The task prompt (rendered from the spec; see `renderTaskPrompt` in @bulkhead/handover). */
  readonly prompt: string;
  readonly gateway: AgentGatewayAccess;
  /** The agent's own conversation id to continue (an `init` or `result` event's `agentSessionId`). */
  readonly resume?: string;
  /** A model name, when not the agent's default. */
  readonly model?: string;
}

/** How to run the agent headless in a session: a command, its environment, and files to write first. */
export interface AgentInvocation {
  /** The argument list; no shell is involved. */
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** Files written in the box before the command runs (absolute paths), e.g. Codex's `config.toml`. */
  readonly files: readonly { readonly path: string; readonly content: string }[];
}

/** Turns an agent's output, chunk by chunk, into events. Linear in the input; lines over the limit are skipped. */
export interface AgentEventParser {
  /** Feeds a chunk of output; returns the events its complete lines held. */
  push(chunk: string): AgentEvent[];
  /** The input ended: returns the events of a last line without a newline. */
  end(): AgentEvent[];
}

/**
 * An agent CLI as bulkhead runs it: headless with a prompt, pointed at the model gateway, as the
 * session's non-root user, its output parsed into {@link AgentEvent}s, and resumable. Built-ins
 * live in `@bulkhead/agents` (Claude Code, Codex, any command). See docs/agents.md.
 */
export interface AgentProvider {
  /** A short name: `claude-code`, `codex`, `command`. */
  readonly name: string;
  /** The command, environment and files that run the agent for `request`. */
  invocation(request: AgentRunRequest): AgentInvocation;
  /** A fresh parser for one run's output. */
  createParser(): AgentEventParser;
}

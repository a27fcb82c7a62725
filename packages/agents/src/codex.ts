import type { AgentEvent, AgentProvider, Usage } from "@bulkhead/core";
import { validateOptions } from "@bulkhead/core";
import { z } from "zod";
import { asCount, asRecord, asString, jsonLineParser, oneLine } from "./line-parser.js";
import { summarizeToolUse } from "./summarize-tool-use.js";

const optionsSchema = z.strictObject({
  /** The executable in the image. @default "codex" */
  executable: z.string().min(1).default("codex"),
  /** The model name sent to the gateway. @default "gpt-5.1-codex" */
  model: z.string().min(1).default("gpt-5.1-codex"),
  /**
   * `CODEX_HOME` in the box: its `config.toml` and session files (for `exec resume`). Outside
   * `/tmp`, where Codex refuses to put its helper links. @default "/workspace/.bulkhead/codex-home"
   */
  codexHome: z.string().regex(/^\//).default("/workspace/.bulkhead/codex-home"),
  /** More arguments for `codex exec`, before the prompt. @default [] */
  extraArgs: z.array(z.string()).default([]),
});

export type CodexOptions = z.input<typeof optionsSchema>;

/** The environment variable Codex reads the gateway's session token from (`env_key`). */
const TOKEN_ENV = "BULKHEAD_GATEWAY_TOKEN";

/** TOML basic string: quotes and backslashes escaped, no control characters. */
const toml = (value: string): string =>
  `"${value.replace(/[\\"]/g, (match) => `\\${match}`).replace(/[\u0000-\u001f\u007f]/g, (match) => `\\u${match.charCodeAt(0).toString(16).padStart(4, "0")}`)}"`;

/** Codex's `turn.completed` usage, normalized (display only). Its `input_tokens` already holds the cached part. */
export function codexUsage(raw: unknown): Usage {
  const usage = asRecord(raw);
  const input = asCount(usage.input_tokens);
  const read = asCount(usage.cached_input_tokens);
  const write = asCount(usage.cache_write_input_tokens);
  return {
    inputTokens: input,
    uncachedInputTokens: Math.max(0, input - read - write),
    cacheReadTokens: read,
    cacheWrite5mTokens: write,
    cacheWrite1hTokens: 0,
    outputTokens: asCount(usage.output_tokens),
    reasoningTokens: asCount(usage.reasoning_output_tokens),
  };
}

/** Events of one line of `codex exec --json`. */
function codexEvents(line: Record<string, unknown>): AgentEvent[] {
  const item = asRecord(line.item);
  const id = asString(item.id) ?? "";
  switch (line.type) {
    case "thread.started":
      return typeof line.thread_id === "string" ? [{ type: "init", agentSessionId: line.thread_id }] : [];
    case "item.started":
      if (item.type === "command_execution") {
        const input = { command: asString(item.command) ?? "" };
        return [{ type: "tool-use", id, name: "shell", input, summary: summarizeToolUse("shell", input) }];
      }
      if (item.type === "mcp_tool_call") {
        const name = `${asString(item.server) ?? "mcp"}.${asString(item.tool) ?? "tool"}`;
        return [{ type: "tool-use", id, name, input: item.arguments, summary: summarizeToolUse(name, item.arguments) }];
      }
      return [];
    case "item.completed":
      switch (item.type) {
        case "agent_message":
          return typeof item.text === "string" && item.text.trim() ? [{ type: "text", text: item.text }] : [];
        case "command_execution":
          return [
            {
              type: "tool-result",
              toolUseId: id,
              isError: item.status === "failed" || (typeof item.exit_code === "number" && item.exit_code !== 0),
              summary: oneLine(asString(item.aggregated_output) || `exit ${String(item.exit_code ?? "?")}`),
            },
          ];
        case "mcp_tool_call":
          return [
            { type: "tool-result", toolUseId: id, isError: item.status === "failed", summary: oneLine(JSON.stringify(item.result ?? "")) },
          ];
        case "file_change": {
          // Codex applies a patch in one step: a tool use and its result together.
          const changes = (Array.isArray(item.changes) ? item.changes.map(asRecord) : []).map(
            (change) => `${asString(change.kind) ?? "update"} ${asString(change.path) ?? "?"}`,
          );
          const input = { changes: item.changes };
          return [
            {
              type: "tool-use",
              id,
              name: "apply_patch",
              input,
              summary: oneLine(`apply_patch ${changes.join(", ")}`.replace(/\/workspace\//g, ""), 120),
            },
            { type: "tool-result", toolUseId: id, isError: item.status === "failed", summary: asString(item.status) ?? "completed" },
          ];
        }
        case "error":
          return [{ type: "error", message: oneLine(asString(item.message) ?? "error", 200) }];
        default:
          return [];
      }
    case "turn.completed": {
      const usage = codexUsage(line.usage);
      return [
        { type: "usage", usage },
        { type: "result", ok: true, text: "turn completed", usage },
      ];
    }
    case "turn.failed":
      return [{ type: "result", ok: false, text: oneLine(asString(asRecord(line.error).message) ?? "turn failed", 200) }];
    case "error":
      return [{ type: "error", message: oneLine(asString(line.message) ?? "error", 200) }];
    default:
      return [];
  }
}

/**
 * Codex (`@openai/codex`), run headless: `codex exec --json
 * --dangerously-bypass-approvals-and-sandbox --skip-git-repo-check <prompt>` (the box is the
 * sandbox; Codex's own needs privileges the box does not grant), or `codex exec resume <id>
 * <prompt>`. Codex ignores `OPENAI_BASE_URL`, so the gateway is a model provider of its own in
 * `$CODEX_HOME/config.toml` (`base_url`, `env_key`, `wire_api = "responses"`).
 */
export function codex(options: CodexOptions = {}): AgentProvider {
  const { executable, model, codexHome, extraArgs } = validateOptions(optionsSchema, options, "options");
  return {
    name: "codex",
    invocation({ prompt, gateway, resume, model: requested }) {
      const config = [
        `model = ${toml(requested ?? model)}`,
        `model_provider = "bulkhead"`,
        `check_for_update_on_startup = false`,
        "",
        "[model_providers.bulkhead]",
        `name = "bulkhead gateway"`,
        `base_url = ${toml(`${gateway.baseUrl.replace(/\/+$/, "")}/v1`)}`,
        `env_key = "${TOKEN_ENV}"`,
        `wire_api = "responses"`,
        "",
      ].join("\n");
      const flags = ["--json", "--dangerously-bypass-approvals-and-sandbox", "--skip-git-repo-check", ...extraArgs];
      return {
        // "--" first: a prompt that starts with "-" is not read as a flag.
        command: resume ? [executable, "exec", "resume", ...flags, "--", resume, prompt] : [executable, "exec", ...flags, "--", prompt],
        env: { CODEX_HOME: codexHome, [TOKEN_ENV]: gateway.token, NO_COLOR: "1" },
        files: [{ path: `${codexHome}/config.toml`, content: config }],
      };
    },
    createParser: () => jsonLineParser(codexEvents),
  };
}

import type { AgentEvent, AgentProvider, Usage } from "@bulkhead/core";
import { validateOptions } from "@bulkhead/core";
import { z } from "zod";
import { asCount, asRecord, asString, jsonLineParser, oneLine } from "./line-parser.js";
import { summarizeToolUse } from "./summarize-tool-use.js";

const optionsSchema = z.strictObject({
  /** The executable in the image. @default "claude" */
  executable: z.string().min(1).default("claude"),
  /** A model name or alias passed as `--model`. */
  model: z.string().min(1).optional(),
  /**
   * Claude Code's permission mode. `bypassPermissions` is for a sealed box, run as its non-root
   * user (Claude Code refuses it as root unless IS_SANDBOX=1, which is also set). @default "bypassPermissions"
   */
  permissionMode: z.enum(["acceptEdits", "auto", "bypassPermissions", "dontAsk", "plan"]).default("bypassPermissions"),
  /** More arguments, before the prompt (e.g. `["--allowedTools", "Edit Write"]`). @default [] */
  extraArgs: z.array(z.string()).default([]),
});

export type ClaudeCodeOptions = z.input<typeof optionsSchema>;

/** Claude Code's usage fields, normalized (display only: the gateway books the real count). */
export function claudeUsage(raw: unknown): Usage {
  const usage = asRecord(raw);
  const creation = asRecord(usage.cache_creation);
  const uncached = asCount(usage.input_tokens);
  const read = asCount(usage.cache_read_input_tokens);
  const write1h = asCount(creation.ephemeral_1h_input_tokens);
  const write5m =
    usage.cache_creation === undefined ? asCount(usage.cache_creation_input_tokens) : asCount(creation.ephemeral_5m_input_tokens);
  return {
    inputTokens: uncached + read + write5m + write1h,
    uncachedInputTokens: uncached,
    cacheReadTokens: read,
    cacheWrite5mTokens: write5m,
    cacheWrite1hTokens: write1h,
    outputTokens: asCount(usage.output_tokens),
    reasoningTokens: asCount(asRecord(usage.output_tokens_details).thinking_tokens),
  };
}

function toolResultText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content))
    return content
      .map((part) => asString(asRecord(part).text) ?? "")
      .filter(Boolean)
      .join("\n");
  return "";
}

/** Events of one line of `claude -p --output-format stream-json --verbose`. */
function claudeEvents(line: Record<string, unknown>): AgentEvent[] {
  const message = asRecord(line.message);
  switch (line.type) {
    case "system": {
      if (line.subtype === "init" && typeof line.session_id === "string")
        return [
          {
            type: "init",
            agentSessionId: line.session_id,
            ...(typeof line.model === "string" ? { model: line.model } : {}),
            ...(Array.isArray(line.tools) ? { tools: line.tools.filter((tool): tool is string => typeof tool === "string") } : {}),
          },
        ];
      const error = asString(line.error) ?? asString(asRecord(line.error).message);
      return error ? [{ type: "error", message: oneLine(error, 200) }] : [];
    }
    case "assistant": {
      // The usage on assistant lines repeats `output_tokens: 1` (seen with 2.1.332): not reported.
      const events: AgentEvent[] = [];
      for (const block of Array.isArray(message.content) ? message.content.map(asRecord) : []) {
        if (block.type === "text" && typeof block.text === "string" && block.text.trim()) events.push({ type: "text", text: block.text });
        else if (block.type === "tool_use" && typeof block.name === "string")
          events.push({
            type: "tool-use",
            id: asString(block.id) ?? "",
            name: block.name,
            input: block.input,
            summary: summarizeToolUse(block.name, block.input),
          });
      }
      return events;
    }
    case "user":
      return (Array.isArray(message.content) ? message.content.map(asRecord) : [])
        .filter((block) => block.type === "tool_result")
        .map((block) => ({
          type: "tool-result",
          toolUseId: asString(block.tool_use_id) ?? "",
          isError: block.is_error === true,
          summary: oneLine(toolResultText(block.content)),
        }));
    case "result": {
      const usage = line.usage === undefined ? undefined : claudeUsage(line.usage);
      return [
        ...(usage ? [{ type: "usage", usage } as const] : []),
        {
          type: "result",
          ok: line.is_error !== true && line.subtype === "success",
          text: asString(line.result) ?? asString(line.subtype) ?? "",
          ...(typeof line.session_id === "string" ? { agentSessionId: line.session_id } : {}),
          ...(typeof line.num_turns === "number" ? { turns: line.num_turns } : {}),
          ...(usage ? { usage } : {}),
        },
      ];
    }
    default:
      return [];
  }
}

/**
 * Claude Code (`@anthropic-ai/claude-code`), run headless: `claude -p --output-format stream-json
 * --verbose --permission-mode bypassPermissions [--resume <id>] -- <prompt>`, pointed at the
 * gateway with `ANTHROPIC_BASE_URL` and the session token as `ANTHROPIC_API_KEY`, with telemetry,
 * error reports and the auto-updater off (the box has no other route anyway).
 *
 * @example
 * const job = await startAgent(session, { provider: claudeCode(), prompt, gateway: { token } });
 */
export function claudeCode(options: ClaudeCodeOptions = {}): AgentProvider {
  const { executable, model, permissionMode, extraArgs } = validateOptions(optionsSchema, options, "options");
  return {
    name: "claude-code",
    invocation({ prompt, gateway, resume, model: requested }) {
      const chosen = requested ?? model;
      return {
        command: [
          executable,
          "-p",
          "--output-format",
          "stream-json",
          "--verbose",
          "--permission-mode",
          permissionMode,
          ...(chosen ? ["--model", chosen] : []),
          ...(resume ? ["--resume", resume] : []),
          ...extraArgs,
          // The prompt is an argument of its own: one that starts with "-" is not read as a flag.
          "--",
          prompt,
        ],
        env: {
          ANTHROPIC_BASE_URL: gateway.baseUrl,
          ANTHROPIC_API_KEY: gateway.token,
          CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
          DISABLE_AUTOUPDATER: "1",
          DISABLE_TELEMETRY: "1",
          DISABLE_ERROR_REPORTING: "1",
          // Claude Code refuses bypassPermissions as root; the session user is not root, and this
          // says the box is a sandbox for an image that runs as root anyway.
          IS_SANDBOX: "1",
        },
        files: [],
      };
    },
    createParser: () => jsonLineParser(claudeEvents),
  };
}

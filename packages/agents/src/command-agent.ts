import type { AgentEvent, AgentEventParser, AgentProvider } from "@bulkhead/core";
import { validateOptions } from "@bulkhead/core";
import { z } from "zod";
import { claudeCode } from "./claude-code.js";
import { codex } from "./codex.js";

const optionsSchema = z.strictObject({
  /** The argument list. `{prompt}` in an argument is replaced by the prompt; `{resume}` by the id to resume. */
  command: z.array(z.string()).min(1),
  /**
   * How the output is read: `text` (each line a text event), or the stream format of a known CLI
   * (`claude-stream-json`, `codex-json`), for wrappers around them. @default "text"
   */
  output: z.enum(["text", "claude-stream-json", "codex-json"]).default("text"),
  /** Extra environment. The prompt is always in `BULKHEAD_PROMPT`, the gateway in `BULKHEAD_GATEWAY_URL` / `BULKHEAD_GATEWAY_TOKEN`. */
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}),
});

export type CommandAgentOptions = z.input<typeof optionsSchema>;

function textParser(): AgentEventParser {
  let pending = "";
  const lines = (text: string): AgentEvent[] =>
    text
      .split("\n")
      .filter((line) => line.trim())
      .map((line) => ({ type: "text", text: line }));
  return {
    push(chunk) {
      const joined = pending + chunk;
      const cut = joined.lastIndexOf("\n");
      pending = joined.slice(cut + 1);
      return cut === -1 ? [] : lines(joined.slice(0, cut));
    },
    end() {
      const rest = pending;
      pending = "";
      return lines(rest);
    },
  };
}

/**
 * Any agent CLI: the command as given (with `{prompt}` / `{resume}` filled in), the prompt and the
 * gateway in the environment, its output read as text or as a known stream format.
 *
 * @example
 * commandAgent({ command: ["aider", "--yes", "--message", "{prompt}"], env: { OPENAI_API_BASE: "..." } });
 */
export function commandAgent(options: CommandAgentOptions): AgentProvider {
  const { command, output, env } = validateOptions(optionsSchema, options, "options");
  return {
    name: "command",
    invocation({ prompt, gateway, resume }) {
      return {
        command: command.map((part) => part.replaceAll("{prompt}", prompt).replaceAll("{resume}", resume ?? "")),
        env: { ...env, BULKHEAD_PROMPT: prompt, BULKHEAD_GATEWAY_URL: gateway.baseUrl, BULKHEAD_GATEWAY_TOKEN: gateway.token },
        files: [],
      };
    },
    createParser:
      output === "claude-stream-json"
        ? () => claudeCode().createParser()
        : output === "codex-json"
          ? () => codex().createParser()
          : textParser,
  };
}

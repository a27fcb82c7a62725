import { claudeCode, codex, formatAgentEvent } from "@bulkhead/agents";
import { InvalidArgumentError, type AgentProvider } from "@bulkhead/core";

/** The built-in providers by the name `--agent` takes. */
export function providerNamed(name: string): AgentProvider {
  if (name === "claude-code") return claudeCode();
  if (name === "codex") return codex();
  throw new InvalidArgumentError("--agent", `"${name}" is not a built-in agent: use claude-code or codex (or inject a command after --)`);
}

/** The session's gateway token: `--token`, else `BULKHEAD_GATEWAY_TOKEN`. */
export function gatewayToken(flag: unknown): string {
  const token = typeof flag === "string" ? flag : process.env.BULKHEAD_GATEWAY_TOKEN;
  if (!token)
    throw new InvalidArgumentError("--token", "an agent needs the session's gateway token: pass --token or set BULKHEAD_GATEWAY_TOKEN");
  return token;
}

/**
 * Prints a job's output as the provider's condensed events (one line per tool use): JSON lines
 * go through the provider's parser, any other line is printed as it is (a test runner's output).
 */
export async function printCondensed(chunks: AsyncIterable<string>, provider: AgentProvider, write: (text: string) => void): Promise<void> {
  const parser = provider.createParser();
  let pending = "";
  const line = (text: string) => {
    if (text.trimStart().startsWith("{")) for (const event of parser.push(`${text}\n`)) write(`${formatAgentEvent(event)}\n`);
    else if (text.trim()) write(`${text}\n`);
  };
  for await (const chunk of chunks) {
    const joined = pending + chunk;
    const cut = joined.lastIndexOf("\n");
    pending = joined.slice(cut + 1);
    if (cut !== -1) for (const text of joined.slice(0, cut).split("\n")) line(text);
  }
  if (pending) line(pending);
  for (const event of parser.end()) write(`${formatAgentEvent(event)}\n`);
}

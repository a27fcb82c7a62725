// The real agent CLIs (Claude Code, Codex) run headless on the host for tests: where npm put
// them, the environment and config that point them at a gateway, and one runner that collects
// their JSON lines.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);

/** Claude Code's native binary: from the platform package (what the wrapper's postinstall copies into its bin/). */
export function claudeCodeBinary(): string {
  try {
    return join(dirname(require.resolve(`@anthropic-ai/claude-code-${process.platform}-${process.arch}/package.json`)), "claude");
  } catch {
    return join(dirname(require.resolve("@anthropic-ai/claude-code/package.json")), "bin", "claude.exe");
  }
}

/** Codex's launcher script (run with `node`; it starts the native binary its platform package ships). */
export function codexEntry(): string {
  return join(dirname(require.resolve("@openai/codex/package.json")), "bin", "codex.js");
}

/**
 * The environment of a headless `claude -p` that may talk to nothing but `baseUrl`: the session
 * token as its API key, `IS_SANDBOX=1` (it refuses to skip permissions as root otherwise), no
 * updater, telemetry, error reports or retries.
 */
export function claudeCodeEnv({ baseUrl, token, home }: { baseUrl: string; token: string; home: string }): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    IS_SANDBOX: "1",
    ANTHROPIC_BASE_URL: baseUrl,
    ANTHROPIC_API_KEY: token,
    DISABLE_AUTOUPDATER: "1",
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    DISABLE_TELEMETRY: "1",
    DISABLE_ERROR_REPORTING: "1",
    CLAUDE_CODE_MAX_RETRIES: "0",
  };
}

/**
 * Writes `$CODEX_HOME/config.toml` with a custom model provider at `baseUrl` (Codex ignores
 * OPENAI_BASE_URL; a provider is the documented way), whose key is read from `envKey`, and no retries.
 */
export function writeCodexConfig({ home, model, baseUrl, envKey }: { home: string; model: string; baseUrl: string; envKey: string }): void {
  writeFileSync(
    join(home, "config.toml"),
    [
      `model = "${model}"`,
      `model_provider = "bulkhead"`,
      `[model_providers.bulkhead]`,
      `name = "bulkhead gateway"`,
      `base_url = "${baseUrl}"`,
      `env_key = "${envKey}"`,
      `wire_api = "responses"`,
      `request_max_retries = 0`,
      `stream_max_retries = 0`,
      "",
    ].join("\n"),
  );
}

/** What an agent CLI run printed: its exit code, output, and the JSON lines of its stdout. */
export interface AgentCliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  lines: Record<string, unknown>[];
}

/** Runs an agent CLI to its end with only the given environment, collecting its JSON-lines stdout. */
export function runAgentCli(
  command: string,
  args: readonly string[],
  { cwd, env }: { cwd: string; env: NodeJS.ProcessEnv },
): Promise<AgentCliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"], env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("error", reject);
    child.once("close", (code) => {
      const lines = stdout
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      resolve({ code, stdout, stderr, lines });
    });
  });
}

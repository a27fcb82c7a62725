// meterCodexStream on real Codex output: the @openai/codex CLI, `codex exec --json`, pointed at a
// scripted Responses API on 127.0.0.1 through a custom provider in $CODEX_HOME/config.toml.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createScriptedUpstream, createTempDir, type ScriptedTurn } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { createBudget } from "../create-budget.js";
import { createTracker } from "../create-tracker.js";
import { priceUsage } from "../price-usage.js";
import { meterCodexStream } from "./meter-codex-stream.js";

const codexBin = join(import.meta.dirname, "../../../../node_modules/.bin/codex");

async function runCodex(turn: ScriptedTurn, meter: (stdout: NodeJS.ReadableStream, kill: () => void) => Promise<unknown>) {
  await using upstream = await createScriptedUpstream({ whenEmpty: turn });
  await using home = createTempDir();
  await using work = createTempDir();
  writeFileSync(
    join(home.path, "config.toml"),
    [
      'model = "gpt-5.1"',
      'model_provider = "local"',
      "[model_providers.local]",
      'name = "local"',
      `base_url = "${upstream.url}/v1"`,
      'wire_api = "responses"',
      'env_key = "LOCAL_API_KEY"',
    ].join("\n"),
  );
  const child = spawn(codexBin, ["exec", "--json", "--skip-git-repo-check", "Say hello."], {
    cwd: work.path,
    env: { PATH: process.env.PATH, HOME: home.path, CODEX_HOME: home.path, LOCAL_API_KEY: "sk-test" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stderr.resume();
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  const result = await meter(child.stdout, () => child.kill());
  return { result, exitCode: await exited, requests: upstream.requests };
}

describe("meterCodexStream on real codex exec --json output", () => {
  it("books each turn's usage with Codex's cache and reasoning fields, priced by the model", async () => {
    const budget = createBudget({ limits: { sessionTotal: 100_000 } });
    const tracker = createTracker({ taskId: "t" });
    const { result, exitCode, requests } = await runCodex(
      {
        text: "Hello from the scripted model.",
        usage: { uncachedInputTokens: 300, cacheReadTokens: 24_448, cacheWrite5mTokens: 100, outputTokens: 122, reasoningTokens: 64 },
      },
      (stdout) => meterCodexStream(stdout, { budget, tracker, model: "gpt-5.1", repo: "backend-api" }),
    );
    expect(exitCode).toBe(0);
    expect(requests.some((request) => request.api === "openai-responses")).toBe(true);
    const usage = {
      inputTokens: 24_848,
      uncachedInputTokens: 300,
      cacheReadTokens: 24_448,
      cacheWrite5mTokens: 100,
      cacheWrite1hTokens: 0,
      outputTokens: 122,
      reasoningTokens: 64,
    };
    expect(result).toMatchObject({
      usage,
      turns: 1,
      failedTurns: 0,
      lastMessage: "Hello from the scripted model.",
      skippedLines: [],
      stoppedBy: null,
    });
    expect((result as { threadId?: string }).threadId).toMatch(/^[0-9a-f-]{36}$/);
    expect(budget.used("sessionTotal")).toBe(24_970);
    // Cached input at the cached rate: read as plain OpenAI usage, it was priced about 3× too high.
    expect(tracker.report().usd).toBeCloseTo(priceUsage(usage, { model: "gpt-5.1" }).usd, 12);
  });

  it("calls onStop once the budget is spent, so the caller can stop codex", async () => {
    const budget = createBudget({ limits: { sessionTotal: 1000 } });
    const stops: string[] = [];
    const { result } = await runCodex({ text: "Long answer.", usage: { uncachedInputTokens: 5000, outputTokens: 10 } }, (stdout, kill) =>
      meterCodexStream(stdout, {
        budget,
        onStop: (reason) => {
          stops.push(reason);
          kill();
        },
      }),
    );
    expect(stops).toEqual(["session-total"]);
    expect(result).toMatchObject({ stoppedBy: "session-total" });
    expect(budget.exhausted).toBe(true);
  });
});

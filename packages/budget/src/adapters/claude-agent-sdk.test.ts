// budgetHooks and meterAgentSdk with the real @anthropic-ai/claude-agent-sdk: it spawns the
// Claude Code binary it ships, pointed with ANTHROPIC_BASE_URL at a scripted Messages API on
// 127.0.0.1. HOME is a temp dir; IS_SANDBOX=1 lets bypassPermissions run as root.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { query } from "@anthropic-ai/claude-agent-sdk";
import { createScriptedUpstream, createTempDir, type ScriptedTurn } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { createBudget, type Budget } from "../create-budget.js";
import { budgetHooks, meterAgentSdk, type BudgetHooksOptions } from "./claude-agent-sdk.js";

/** Answers the client's side requests (titles, probes: no tools) without eating the script. */
const sideRequests = (request: { body: Record<string, unknown> | undefined }): ScriptedTurn | undefined =>
  Array.isArray(request.body?.tools) && request.body.tools.length > 0
    ? undefined
    : { text: "ok", usage: { uncachedInputTokens: 1, outputTokens: 1 } };

async function run(turns: ScriptedTurn[], budget: Budget, hookOptions: Omit<BudgetHooksOptions, "budget"> = {}) {
  await using upstream = await createScriptedUpstream({ turns, respond: sideRequests });
  await using home = createTempDir();
  await using work = createTempDir();
  const metered = meterAgentSdk(
    query({
      prompt: "Write hello to notes.txt, then say Done.",
      options: {
        cwd: work.path,
        model: "claude-sonnet-4-6",
        permissionMode: "bypassPermissions",
        includePartialMessages: true,
        allowDangerouslySkipPermissions: true,
        hooks: budgetHooks({ ...hookOptions, budget }),
        env: {
          PATH: process.env.PATH,
          HOME: home.path,
          IS_SANDBOX: "1",
          ANTHROPIC_BASE_URL: upstream.url,
          ANTHROPIC_API_KEY: "sk-ant-test",
        },
      },
    }),
    { budget },
  );
  const types: string[] = [];
  for await (const message of metered) types.push(message.type);
  const bodies = upstream.requestsFor("anthropic-messages").map((request) => request.rawBody);
  return {
    metered: metered.metered,
    types,
    bodies,
    file: join(work.path, "notes.txt"),
    written: existsSync(join(work.path, "notes.txt")) && readFileSync(join(work.path, "notes.txt"), "utf8"),
  };
}

const writeTurn = (path = "notes.txt"): ScriptedTurn => ({
  toolUses: [{ name: "Write", input: { file_path: path, content: "hello\n" } }],
  usage: { uncachedInputTokens: 100, cacheReadTokens: 2000, cacheWrite1hTokens: 500, outputTokens: 30 },
});
const doneTurn: ScriptedTurn = { text: "Done.", usage: { uncachedInputTokens: 150, outputTokens: 5 } };

describe("the Claude Agent SDK adapters with the real SDK", () => {
  it("meters every message and the result, and books a tool call through the hooks' lease", async () => {
    const budget = createBudget({ limits: { sessionTotal: 100_000, toolCalls: 10_000 } });
    const { metered, types, written } = await run([writeTurn(), doneTurn], budget);
    expect(written).toBe("hello\n");
    expect(types.at(-1)).toBe("result");
    expect(metered).toMatchObject({ resultSubtype: "success", toolUses: 1, stoppedBy: null });
    // Side requests of the CLI (a title, probes) are answered with 1 + 1 tokens; the result's
    // modelUsage counts them, so allow a few.
    expect(metered.usage).toMatchObject({ cacheReadTokens: 2000, cacheWrite1hTokens: 500 });
    expect(metered.usage.uncachedInputTokens - 250).toBeGreaterThanOrEqual(0);
    expect(metered.usage.uncachedInputTokens - 250).toBeLessThan(10);
    expect(metered.usage.outputTokens - 35).toBeGreaterThanOrEqual(0);
    expect(metered.usage.outputTokens - 35).toBeLessThan(10);
    expect(budget.used("toolCalls")).toBeGreaterThan(0);
    expect(budget.reserved("toolCalls")).toBe(0);
    expect(budget.snapshot().activeLeases).toBe(0);
    expect(budget.used("sessionTotal")).toBe(metered.usage.inputTokens + metered.usage.outputTokens + budget.used("toolCalls"));
  });

  it("a tool limit by count: the call is denied with a message that says what was spent", async () => {
    const budget = createBudget({ limits: { sessionTotal: 100_000 } });
    const { bodies, written } = await run([writeTurn(), doneTurn], budget, { maxToolCalls: 0 });
    expect(written).toBe(false);
    expect(bodies.some((body) => body.includes("Tool call limit reached: 0 of 0 tool calls made (0 tokens spent on tools)"))).toBe(true);
  });

  it("a tool limit by tokens: a call that does not fit says what it needs and what is left, not that the budget is spent", async () => {
    const budget = createBudget({ limits: { sessionTotal: 100_000, toolCalls: 5 } });
    const { bodies, written } = await run([writeTurn(), doneTurn], budget);
    expect(written).toBe(false);
    const refusal = /The tool budget cannot take this Write call: it needs \d+ tokens and 5 tokens of 5 tokens are left \(0 tokens spent\)/;
    expect(bodies.some((body) => refusal.test(body))).toBe(true);
  });

  it("follows work into a subagent: its messages are booked too", async () => {
    const budget = createBudget({ limits: { sessionTotal: 100_000 } });
    const { metered } = await run(
      [
        {
          toolUses: [
            { name: "Agent", input: { description: "write notes", prompt: "Write hello to notes.txt", subagent_type: "general-purpose" } },
          ],
          usage: { uncachedInputTokens: 100, outputTokens: 20 },
        },
        { text: "Subagent done.", usage: { uncachedInputTokens: 4000, outputTokens: 300 } },
        doneTurn,
      ],
      budget,
    );
    expect(metered.assistantMessages).toBeGreaterThanOrEqual(3);
    expect(metered.usage.inputTokens).toBeGreaterThanOrEqual(4250);
    expect(metered.usage.outputTokens).toBeGreaterThanOrEqual(325);
    expect(budget.used("sessionTotal")).toBeGreaterThanOrEqual(4575);
  });

  it("stops the run (query.interrupt) once the session total is spent", async () => {
    const budget = createBudget({ limits: { sessionTotal: 1000 } });
    const { metered } = await run([writeTurn(), doneTurn, doneTurn], budget);
    expect(metered.stoppedBy).toBe("session-total");
    expect(budget.exhausted).toBe(true);
  });
});

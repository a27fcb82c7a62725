// The real Claude Code CLI (npm @anthropic-ai/claude-code, its native binary) run on the host
// against the gateway, which forwards to a scripted Anthropic upstream on 127.0.0.1.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createBudget, normalizeUsage, usageOnly } from "@bulkhead/budget";
import { addUsage, emptyUsage } from "@bulkhead/core";
import { claudeCodeBinary, claudeCodeEnv, runAgentCli, type ScriptedUpstream } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { cleanUpAfterEach, setupAgentGateway } from "../test/agent-cli-setup.js";
import type { Gateway } from "./index.js";

const CANARY = "sk-ant-canary-claude-code-5d1e8a";
const MODEL = "claude-sonnet-4-5";
const CLAUDE = claudeCodeBinary();

cleanUpAfterEach();

async function setup(script: Parameters<typeof setupAgentGateway>[2]) {
  const setup = await setupAgentGateway("anthropic", CANARY, script);
  return setup;
}

/** Runs `claude -p` headless, as root with IS_SANDBOX=1, with nothing but the gateway to talk to. */
const runClaude = (gateway: Gateway, token: string, cwd: string, home: string, prompt: string) =>
  runAgentCli(CLAUDE, ["-p", prompt, "--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions", "--model", MODEL], {
    cwd,
    env: claudeCodeEnv({ baseUrl: gateway.anthropicBaseUrl!, token, home }),
  });

const sentUsage = (upstream: ScriptedUpstream) =>
  upstream
    .requestsFor("anthropic-messages")
    .filter((request) => request.sentUsage !== undefined)
    .map((request) => usageOnly(normalizeUsage("anthropic", request.sentUsage)));

describe("the real Claude Code CLI through the gateway", () => {
  it("writes a file with its own tool and ends; the gateway booked exactly what the upstream sent", async () => {
    const { upstream, gateway, work, home } = await setup((dir) => ({
      turns: [
        {
          text: "I will write the file.",
          toolUses: [{ name: "Write", input: { file_path: join(dir, "hello.txt"), content: "hello from claude\n" } }],
          usage: { uncachedInputTokens: 1_200, cacheReadTokens: 9_000, cacheWrite5mTokens: 300, cacheWrite1hTokens: 40, outputTokens: 31 },
        },
        {
          text: "Done: hello.txt is written.",
          usage: { uncachedInputTokens: 150, cacheReadTokens: 10_500, cacheWrite5mTokens: 60, outputTokens: 9 },
        },
      ],
    }));
    const budget = createBudget({ id: "cc-1", limits: { sessionTotal: 1_000_000 } });
    const session = gateway.addSession({ sessionId: "cc-1", budget });
    const result = await runClaude(gateway, session.token, work, home, "Write hello.txt");
    expect(result.code, result.stderr).toBe(0);
    expect(readFileSync(join(work, "hello.txt"), "utf8")).toBe("hello from claude\n");
    expect(result.lines.at(-1)).toMatchObject({ type: "result", subtype: "success" });
    const records = gateway.audit("cc-1");
    expect(records.map((record) => record.outcome)).toEqual(["ok", "ok"]);
    const sent = sentUsage(upstream);
    expect(sent).toHaveLength(2);
    expect(records.map((record) => record.usage)).toEqual(sent);
    const total = sent.reduce(addUsage, emptyUsage());
    expect(gateway.stats("cc-1").usage).toEqual(total);
    expect(gateway.tracker("cc-1").report().usage).toEqual(total);
    expect(budget.used("sessionTotal")).toBe(total.inputTokens + total.outputTokens);
    expect(upstream.requests.every((request) => request.headers["x-api-key"] === CANARY)).toBe(true);
    expect(result.stdout + result.stderr).not.toContain(CANARY);
  });

  it("is stopped by the generation budget within one delta: the stream ends at max_tokens, the tool use never comes", async () => {
    const words = Array.from({ length: 400 }, (_, index) => ` step${index}`);
    const { upstream, gateway, work, home } = await setup((dir) => ({
      turns: [
        {
          text: words,
          toolUses: [{ name: "Write", input: { file_path: join(dir, "late.txt"), content: "x" } }],
          usage: { outputTokens: 900 },
        },
      ],
    }));
    const budget = createBudget({ id: "cc-2", limits: { generation: 60 } });
    const session = gateway.addSession({ sessionId: "cc-2", budget });
    const result = await runClaude(gateway, session.token, work, home, "Think aloud, then write late.txt");
    const records = gateway.audit("cc-2");
    expect(records[0]).toMatchObject({
      outcome: "stopped",
      budget: [
        { kind: "generation", action: "clamped" },
        { kind: "generation", action: "stopped" },
      ],
    });
    expect(upstream.requests[0]!.body!.max_tokens).toBe(60);
    // Within one delta of the limit (a delta here is at most 3 tokens), never over it.
    expect(budget.used("generation")).toBeLessThanOrEqual(60);
    expect(budget.used("generation")).toBeGreaterThan(60 - 3);
    expect(existsSync(join(work, "late.txt"))).toBe(false);
    // Whatever Claude Code tries next is stopped within the few tokens left, or refused with the
    // budget's name once none are; the session never generates past its limit, and the agent ends.
    for (const record of records.slice(1)) {
      expect(["stopped", "refused"]).toContain(record.outcome);
      expect(record.budget.every((act) => act.kind === "generation")).toBe(true);
    }
    expect(budget.used("generation")).toBeLessThanOrEqual(60);
    expect(result.lines.at(-1)).toMatchObject({ type: "result" });
  });

  it("a spent tool-call budget means the next turn goes upstream with tool use disabled, and the agent ends", async () => {
    const { upstream, gateway, work, home } = await setup((dir) => ({
      turns: [{ toolUses: [{ name: "Write", input: { file_path: join(dir, "first.txt"), content: "first\n" } }] }],
      // A model that obeys tool_choice: with tools disabled it can only answer in text.
      respond: (request) =>
        JSON.stringify(request.body?.tool_choice) === JSON.stringify({ type: "none" })
          ? { text: "The tool budget is spent; stopping here." }
          : undefined,
      whenEmpty: { toolUses: [{ name: "Write", input: { file_path: join(dir, "again.txt"), content: "again\n" } }] },
    }));
    const budget = createBudget({ id: "cc-3", limits: { toolCalls: 1 } });
    const session = gateway.addSession({ sessionId: "cc-3", budget });
    const result = await runClaude(gateway, session.token, work, home, "Write first.txt, then more files");
    expect(result.code, result.stderr).toBe(0);
    expect(existsSync(join(work, "first.txt"))).toBe(true);
    expect(existsSync(join(work, "again.txt"))).toBe(false);
    const second = upstream.requestsFor("anthropic-messages")[1]!;
    expect(second.body!.tool_choice).toEqual({ type: "none" });
    expect(JSON.stringify(second.body!.messages)).toContain("tool-call budget of this session is spent");
    expect(gateway.audit("cc-3")[1]!.budget).toContainEqual({ kind: "toolCalls", action: "tools-disabled" });
    expect(budget.used("toolCalls")).toBeGreaterThan(0);
    expect(result.lines.at(-1)).toMatchObject({ type: "result", subtype: "success" });
  });

  it("a spent session total refuses the next call with the budget's name, and asks for a handover once", async () => {
    const { upstream, gateway, work, home } = await setup((dir) => ({
      turns: [
        {
          toolUses: [{ name: "Write", input: { file_path: join(dir, "one.txt"), content: "one\n" } }],
          usage: { uncachedInputTokens: 199_000, outputTokens: 1_500 },
        },
      ],
      whenEmpty: { text: "more" },
    }));
    const budget = createBudget({ id: "cc-4", limits: { sessionTotal: 200_000 } });
    const session = gateway.addSession({ sessionId: "cc-4", budget });
    const handovers: unknown[] = [];
    gateway.on("handover-required", (event) => handovers.push(event));
    const result = await runClaude(gateway, session.token, work, home, "Write one.txt");
    expect(existsSync(join(work, "one.txt"))).toBe(true);
    expect(handovers).toEqual([{ sessionId: "cc-4", budgetId: "cc-4", kind: "sessionTotal", used: 200_500, limit: 200_000 }]);
    const records = gateway.audit("cc-4");
    expect(records[0]!.outcome).toBe("ok");
    expect(records[1]).toMatchObject({ outcome: "refused", status: 402, budget: [{ kind: "sessionTotal", action: "refused" }] });
    // Exactly one refused call: Claude Code does not send a billing_error's call again (a 400 made
    // it resend the refused call five times, without deferred tools and thinking display).
    expect(records).toHaveLength(2);
    expect(upstream.requestsFor("anthropic-messages")).toHaveLength(1);
    // Claude Code shows the gateway's message: the agent (and its log) says why it stopped.
    expect(result.stdout).toContain("session-total budget");
  });
});

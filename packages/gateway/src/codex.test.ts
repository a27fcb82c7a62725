// The real Codex CLI (npm @openai/codex, its native binary) run on the host with a custom model
// provider in $CODEX_HOME/config.toml pointing at the gateway (OPENAI_BASE_URL is ignored by Codex),
// which forwards to a scripted Responses upstream on 127.0.0.1.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createBudget, normalizeUsage, usageOnly } from "@bulkhead/budget";
import { addUsage, emptyUsage } from "@bulkhead/core";
import { codexEntry, runAgentCli, writeCodexConfig, type ScriptedUpstream } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { cleanUpAfterEach, setupAgentGateway } from "../test/agent-cli-setup.js";
import type { Gateway } from "./index.js";

const CANARY = "sk-proj-canary-codex-0b9e4f";
const MODEL = "gpt-4.1";
const CODEX = codexEntry();

cleanUpAfterEach();

async function setup(script: Parameters<typeof setupAgentGateway>[2]) {
  const setup = await setupAgentGateway("openai", CANARY, script);
  // The documented way to point Codex at another Responses endpoint: a custom provider.
  writeCodexConfig({ home: setup.home, model: MODEL, baseUrl: setup.gateway.openaiBaseUrl!, envKey: "BULKHEAD_SESSION_TOKEN" });
  return setup;
}

const runCodex = (gateway: Gateway, token: string, cwd: string, home: string, prompt: string) =>
  runAgentCli(process.execPath, [CODEX, "exec", "--skip-git-repo-check", "--json", "--dangerously-bypass-approvals-and-sandbox", prompt], {
    cwd,
    env: { PATH: process.env.PATH, HOME: home, CODEX_HOME: home, BULKHEAD_SESSION_TOKEN: token },
  });

const sentUsage = (upstream: ScriptedUpstream) =>
  upstream
    .requestsFor("openai-responses")
    .filter((request) => request.sentUsage !== undefined)
    .map((request) => usageOnly(normalizeUsage("openai", request.sentUsage)));

describe("the real Codex CLI through the gateway", () => {
  it("runs a scripted command with its own tool and ends; the gateway booked exactly what the upstream sent", async () => {
    const { upstream, gateway, work, home } = await setup(() => ({
      turns: [
        {
          toolUses: [{ name: "exec_command", input: { cmd: "printf 'hello from codex\\n' > hello.txt" } }],
          usage: { uncachedInputTokens: 2_000, cacheReadTokens: 6_000, outputTokens: 44, reasoningTokens: 12 },
        },
        { text: "Done: hello.txt is written.", usage: { uncachedInputTokens: 300, cacheReadTokens: 8_000, outputTokens: 9 } },
      ],
    }));
    const budget = createBudget({ id: "cx-1", limits: { sessionTotal: 1_000_000 } });
    const session = gateway.addSession({ sessionId: "cx-1", budget });
    const result = await runCodex(gateway, session.token, work, home, "Write hello.txt");
    expect(result.code, result.stderr).toBe(0);
    expect(readFileSync(join(work, "hello.txt"), "utf8")).toBe("hello from codex\n");
    const records = gateway.audit("cx-1");
    expect(records.map((record) => record.outcome)).toEqual(["ok", "ok"]);
    const sent = sentUsage(upstream);
    expect(records.map((record) => record.usage)).toEqual(sent);
    const total = sent.reduce(addUsage, emptyUsage());
    expect(gateway.stats("cx-1").usage).toEqual(total);
    expect(total).toMatchObject({ cacheReadTokens: 14_000, reasoningTokens: 12 });
    expect(budget.used("sessionTotal")).toBe(total.inputTokens + total.outputTokens);
    expect(upstream.requests.every((request) => request.headers.authorization === `Bearer ${CANARY}`)).toBe(true);
    expect(result.stdout + result.stderr).not.toContain(CANARY);
    // Codex's own report of the turn agrees with the gateway's books.
    const turn = result.lines.find((line) => line.type === "turn.completed") as { usage: { input_tokens: number; output_tokens: number } };
    expect(turn.usage.input_tokens).toBe(total.inputTokens);
    expect(turn.usage.output_tokens).toBe(total.outputTokens);
  });

  it("is stopped by the generation budget: the stream ends incomplete within one delta, the command never runs", async () => {
    const words = Array.from({ length: 400 }, (_, index) => ` step${index}`);
    const { upstream, gateway, work, home } = await setup(() => ({
      turns: [{ text: words, toolUses: [{ name: "exec_command", input: { cmd: "touch late.txt" } }], usage: { outputTokens: 900 } }],
    }));
    const budget = createBudget({ id: "cx-2", limits: { generation: 60 } });
    const session = gateway.addSession({ sessionId: "cx-2", budget });
    await runCodex(gateway, session.token, work, home, "Think aloud, then touch late.txt");
    const records = gateway.audit("cx-2");
    expect(records[0]).toMatchObject({ outcome: "stopped" });
    expect(upstream.requests[0]!.body!.max_output_tokens).toBe(60);
    expect(budget.used("generation")).toBeLessThanOrEqual(60);
    expect(budget.used("generation")).toBeGreaterThan(60 - 3);
    expect(existsSync(join(work, "late.txt"))).toBe(false);
    for (const record of records.slice(1)) expect(["stopped", "refused"]).toContain(record.outcome);
    expect(budget.used("generation")).toBeLessThanOrEqual(60);
  });

  it("a spent tool-call budget means the next turn goes upstream with tool_choice none, and the agent ends", async () => {
    const { upstream, gateway, work, home } = await setup(() => ({
      turns: [{ toolUses: [{ name: "exec_command", input: { cmd: "echo first > first.txt" } }] }],
      respond: (request) => (request.body?.tool_choice === "none" ? { text: "The tool budget is spent; stopping here." } : undefined),
      whenEmpty: { toolUses: [{ name: "exec_command", input: { cmd: "echo again > again.txt" } }] },
    }));
    const budget = createBudget({ id: "cx-3", limits: { toolCalls: 1 } });
    const session = gateway.addSession({ sessionId: "cx-3", budget });
    const result = await runCodex(gateway, session.token, work, home, "Write first.txt, then more files");
    expect(result.code, result.stderr).toBe(0);
    expect(existsSync(join(work, "first.txt"))).toBe(true);
    expect(existsSync(join(work, "again.txt"))).toBe(false);
    const second = upstream.requestsFor("openai-responses")[1]!;
    expect(second.body!.tool_choice).toBe("none");
    expect(JSON.stringify(second.body!.input)).toContain("tool-call budget of this session is spent");
    expect(gateway.audit("cx-3")[1]!.budget).toContainEqual({ kind: "toolCalls", action: "tools-disabled" });
  });
});

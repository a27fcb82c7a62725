import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { AgentEvent } from "@bulkhead/core";
import type { Gateway } from "@bulkhead/gateway";
import type { Session } from "@bulkhead/sandbox";
import { createScriptedUpstream, createTempDir, initRepo, type ScriptedUpstream, type TempDir } from "@bulkhead/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSealedAgentSession } from "../test/sealed-agent-session.js";
import { claudeCode, formatAgentEvent, startAgent } from "./index.js";

const events = async (run: { events(): AsyncGenerator<AgentEvent> }) => {
  const all: AgentEvent[] = [];
  for await (const event of run.events()) all.push(event);
  return all;
};

describe("Claude Code (the real CLI) in a sealed session", () => {
  let dir: TempDir;
  let upstream: ScriptedUpstream;
  let gateway: Gateway;
  let session: Session;
  let token: string;
  const canary = `sk-ant-canary-${randomBytes(12).toString("hex")}`;
  // A pattern that finds the canary but is not itself the canary's text (so the probe cannot plant it).
  const canaryPattern = "sk-ant-can[a]ry-";

  beforeAll(async () => {
    dir = createTempDir();
    initRepo(join(dir.path, "api"), { "src/index.ts": "export {};\n" });
    upstream = await createScriptedUpstream({
      // A call without tools (a title, a probe) must not eat the script.
      respond: (received) => (Array.isArray(received.body?.tools) && received.body.tools.length > 0 ? undefined : { text: "title" }),
      turns: [
        {
          text: "Writing the rate limiter.",
          toolUses: [{ name: "Write", input: { file_path: "/workspace/api/src/rate-limit.ts", content: "export const limit = 10;\n" } }],
          usage: { uncachedInputTokens: 120, cacheReadTokens: 40, cacheWrite5mTokens: 8, outputTokens: 30 },
        },
        {
          toolUses: [
            {
              name: "Bash",
              input: {
                command: `echo canary=$(cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c '${canaryPattern}') token=$(cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c '^ANTHROPIC_API_KEY=bh-') files=$(grep -rlE '${canaryPattern}' /workspace /tmp /etc 2>/dev/null | wc -l)`,
                description: "Look for keys",
              },
            },
          ],
          usage: { uncachedInputTokens: 200, outputTokens: 20 },
        },
        { text: "Done: src/rate-limit.ts exports the limit.", usage: { uncachedInputTokens: 260, outputTokens: 12 } },
        // The resumed run's one answer.
        { text: "Resumed: nothing left to do.", usage: { uncachedInputTokens: 300, outputTokens: 8 } },
      ],
    });
    ({ gateway, session, token } = await startSealedAgentSession({
      dir: dir.path,
      agent: "claude-code",
      upstream: upstream.url,
      apiKey: canary,
    }));
  });
  afterAll(async () => {
    await session?.remove({ force: true }).catch(() => undefined);
    await gateway?.close();
    await upstream?.close();
    dir?.remove();
  });

  let firstJob: string;

  it("edits a file through its own tools, reaching the model only through the gateway socket", async () => {
    const run = await startAgent(session, {
      provider: claudeCode(),
      prompt: "Add a rate limiter in src/rate-limit.ts.",
      gateway: { token },
    });
    firstJob = run.job.id;
    const seen = await events(run);
    expect(await run.job.wait()).toEqual({ exitCode: 0 });
    const types = seen.map((event) => event.type);
    expect(types[0]).toBe("init");
    expect(types.at(-1)).toBe("result");
    const toolUses = seen.filter((event) => event.type === "tool-use");
    expect(toolUses.map((event) => event.summary.split(" ", 2).join(" "))).toEqual(["Write api/src/rate-limit.ts", "Bash echo"]);
    // One line per tool use, however long the command.
    expect(toolUses.every((event) => event.summary.length <= 120 && !event.summary.includes("\n"))).toBe(true);
    expect(seen.filter((event) => event.type === "tool-result").map((event) => event.isError)).toEqual([false, false]);
    expect(seen.at(-1)).toMatchObject({ type: "result", ok: true, text: "Done: src/rate-limit.ts exports the limit.", turns: 3 });
    expect(seen.map(formatAgentEvent)).toContain("→ Write api/src/rate-limit.ts");
    const file = session.readWorkspaceFile("api", "src/rate-limit.ts");
    expect(file.kind === "file" && file.content.toString("utf8")).toBe("export const limit = 10;\n");
    // The upstream got the real key and nothing else; the gateway booked exactly what it sent.
    const messages = upstream.requestsFor("anthropic-messages");
    expect(messages.length).toBeGreaterThanOrEqual(3);
    expect(new Set(messages.map((received) => received.headers["x-api-key"]))).toEqual(new Set([canary]));
    const stats = gateway.stats("agents-claude");
    expect(stats.calls).toBe(messages.length);
    const sent = messages.map((received) => received.sentUsage as Record<string, number>);
    const sum = (key: string) => sent.reduce((total, usage) => total + (usage[key] ?? 0), 0);
    expect(stats.usage).toMatchObject({
      uncachedInputTokens: sum("input_tokens"),
      cacheReadTokens: sum("cache_read_input_tokens"),
      outputTokens: sum("output_tokens"),
    });
    expect(stats.usage.cacheReadTokens).toBe(40);
    expect(stats.usage.cacheWrite5mTokens).toBe(8);
  });

  it("never holds the real key: not in its environment, processes, files or logs; only the session token", async () => {
    // The agent's own Bash probe ran while Claude Code was live, and its output went upstream.
    const probe = upstream
      .requestsFor("anthropic-messages")
      .map((received) => received.rawBody)
      .find((body) => body.includes("canary=") && body.includes("tool_result"));
    expect(probe).toMatch(/canary=0 token=[1-9]\d* files=0/);
    const security = await session.inspectSecurity();
    expect(security.env.join("\n")).not.toContain(canary);
    expect(security.networkMode).toBe("none");
    const search = await session.exec([
      "sh",
      "-c",
      `grep -rlE '${canaryPattern}' /workspace /tmp /etc /proc/[0-9]*/environ 2>/dev/null | wc -l`,
    ]);
    expect(search.stdout.trim()).toBe("0");
    let log = "";
    for await (const chunk of session.job(firstJob).logs()) log += chunk;
    expect(log).not.toContain(canary);
    expect(log).toContain('"type":"result"');
  });

  it("resumes its conversation from the earlier job", async () => {
    const before = upstream.requestsFor("anthropic-messages").length;
    const run = await startAgent(session, { provider: claudeCode(), prompt: "Anything left?", gateway: { token }, resume: firstJob });
    const seen = await events(run);
    expect(await run.job.wait()).toEqual({ exitCode: 0 });
    const init = seen.find((event) => event.type === "init");
    expect(run.resumed).toBeDefined();
    expect(init?.type === "init" && init.agentSessionId).toBe(run.resumed);
    expect(seen.at(-1)).toMatchObject({ type: "result", ok: true, text: "Resumed: nothing left to do." });
    // The resumed call carries the earlier conversation: the Write call's result is in it.
    const resumed = upstream.requestsFor("anthropic-messages").slice(before).at(-1)!;
    expect(resumed.rawBody).toContain("rate-limit.ts");
    expect(resumed.rawBody).toContain("Anything left?");
  });
});

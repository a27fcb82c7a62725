import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { AgentEvent } from "@bulkhead/core";
import type { Gateway } from "@bulkhead/gateway";
import type { Session } from "@bulkhead/sandbox";
import { createScriptedUpstream, createTempDir, initRepo, type ScriptedUpstream, type TempDir } from "@bulkhead/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSealedAgentSession } from "../test/sealed-agent-session.js";
import { codex, startAgent } from "./index.js";

const collect = async (run: { events(): AsyncGenerator<AgentEvent> }) => {
  const all: AgentEvent[] = [];
  for await (const event of run.events()) all.push(event);
  return all;
};

describe("Codex (the real CLI) in a sealed session", () => {
  let dir: TempDir;
  let upstream: ScriptedUpstream;
  let gateway: Gateway;
  let session: Session;
  let token: string;
  const canary = `sk-proj-canary-${randomBytes(12).toString("hex")}`;

  beforeAll(async () => {
    dir = createTempDir();
    initRepo(join(dir.path, "api"), { "src/index.ts": "export {};\n" });
    upstream = await createScriptedUpstream({
      turns: [
        {
          text: "Writing the limit.",
          toolUses: [{ name: "exec_command", input: { cmd: "printf 'export const limit = 10;\\n' > src/rate-limit.ts" } }],
          usage: { uncachedInputTokens: 500, cacheReadTokens: 100, outputTokens: 25 },
        },
        { text: "Done: src/rate-limit.ts.", usage: { uncachedInputTokens: 700, outputTokens: 6 } },
        { text: "Resumed: nothing left.", usage: { uncachedInputTokens: 800, outputTokens: 5 } },
      ],
    });
    ({ gateway, session, token } = await startSealedAgentSession({
      dir: dir.path,
      agent: "codex",
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

  it("runs a shell command through its own tool, via the gateway's Responses API only", async () => {
    const run = await startAgent(session, { provider: codex(), prompt: "Add src/rate-limit.ts.", gateway: { token } });
    firstJob = run.job.id;
    const seen = await collect(run);
    const log: string[] = [];
    for await (const chunk of run.job.logs()) log.push(chunk);
    expect(await run.job.wait(), log.join("")).toEqual({ exitCode: 0 });
    expect(seen[0]?.type).toBe("init");
    const toolUse = seen.find((event) => event.type === "tool-use");
    expect(toolUse?.type === "tool-use" && toolUse.summary).toMatch(/^shell .*printf 'export const limit = 10;/);
    expect(seen.find((event) => event.type === "tool-result")).toMatchObject({ isError: false });
    expect(seen.filter((event) => event.type === "text").map((event) => event.type === "text" && event.text)).toContain(
      "Done: src/rate-limit.ts.",
    );
    expect(seen.at(-1)).toMatchObject({ type: "result", ok: true });
    const file = session.readWorkspaceFile("api", "src/rate-limit.ts");
    expect(file.kind === "file" && file.content.toString("utf8")).toBe("export const limit = 10;\n");
    const calls = upstream.requestsFor("openai-responses");
    expect(calls.length).toBe(2);
    expect(new Set(calls.map((received) => received.headers.authorization))).toEqual(new Set([`Bearer ${canary}`]));
    // Booked by the gateway exactly as what the upstream sent.
    const sent = calls.map(
      (received) => received.sentUsage as { input_tokens: number; output_tokens: number; input_tokens_details: { cached_tokens: number } },
    );
    const stats = gateway.stats("agents-codex");
    expect(stats.usage).toMatchObject({
      inputTokens: sent.reduce((total, usage) => total + usage.input_tokens, 0),
      cacheReadTokens: sent.reduce((total, usage) => total + usage.input_tokens_details.cached_tokens, 0),
      outputTokens: sent.reduce((total, usage) => total + usage.output_tokens, 0),
    });
    expect(stats.usage.cacheReadTokens).toBe(100);
    expect(log.join("")).not.toContain(canary);
    const search = await session.exec([
      "sh",
      "-c",
      "grep -rlE 'sk-proj-can[a]ry-' /workspace /tmp /etc /proc/[0-9]*/environ 2>/dev/null | wc -l",
    ]);
    expect(search.stdout.trim()).toBe("0");
  });

  it("resumes its thread with codex exec resume", async () => {
    const run = await startAgent(session, { provider: codex(), prompt: "Anything left?", gateway: { token }, resume: firstJob });
    const seen = await collect(run);
    expect(await run.job.wait()).toEqual({ exitCode: 0 });
    expect(run.resumed).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen.filter((event) => event.type === "text").map((event) => event.type === "text" && event.text)).toContain(
      "Resumed: nothing left.",
    );
    const last = upstream.requestsFor("openai-responses").at(-1)!;
    expect(last.rawBody).toContain("Anything left?");
    expect(last.rawBody).toContain("rate-limit.ts");
  });
});

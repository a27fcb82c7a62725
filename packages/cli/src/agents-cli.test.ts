import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { agentImage } from "@bulkhead/agents";
import { createBudget, normalizeUsage, usageOnly } from "@bulkhead/budget";
import { addUsage, emptyUsage } from "@bulkhead/core";
import { createGateway } from "@bulkhead/gateway";
import { buildImage, defineProject, getSession } from "@bulkhead/sandbox";
import { createScriptedUpstream, createTempDir, initRepo } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { main } from "./main.js";

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, { stdout: (text) => void (out += text), stderr: (text) => void (err += text), progress: () => undefined });
  return { code, out, err };
}

describe("bulkhead dispatch and inject with the real Claude Code, through the gateway", () => {
  it("dispatches the spec's prompt to the agent in a sealed session, metered by its own gateway, then follows a resumed run as condensed events", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "backend-api"), { "src/index.ts": "export {};\n" });
    await using upstream = await createScriptedUpstream({
      respond: (received) => (Array.isArray(received.body?.tools) && received.body.tools.length > 0 ? undefined : { text: "title" }),
      turns: [
        {
          toolUses: [{ name: "Write", input: { file_path: "/workspace/backend-api/src/limit.ts", content: "export const limit = 5;\n" } }],
          usage: { uncachedInputTokens: 250, cacheWrite5mTokens: 1_200, outputTokens: 30 },
        },
        {
          text: "Done: src/limit.ts.",
          usage: { uncachedInputTokens: 300, cacheReadTokens: 1_200, cacheWrite5mTokens: 40, outputTokens: 9 },
        },
        { text: "Resumed: nothing left." },
      ],
    });
    mkdirSync(join(dir.path, "gateway"));
    const socketPath = join(dir.path, "gateway", "gateway.sock");
    // dispatch serves the gateway itself, with the host's key and upstream from the environment.
    const saved = { upstream: process.env.BULKHEAD_UPSTREAM_ANTHROPIC, key: process.env.ANTHROPIC_API_KEY };
    process.env.BULKHEAD_UPSTREAM_ANTHROPIC = upstream.url;
    process.env.ANTHROPIC_API_KEY = "sk-ant-test";
    let gateway: Awaited<ReturnType<typeof createGateway>> | undefined;
    try {
      const { tag } = await buildImage(
        defineProject({
          name: "agents-claude",
          repos: [{ name: "backend-api", path: join(dir.path, "backend-api") }],
          image: agentImage({ agent: "claude-code" }),
        }),
      );
      writeFileSync(
        join(dir.path, "bulkhead.yaml"),
        `name: cli-agent\nrepos:\n  - name: backend-api\n    path: backend-api\nimage:\n  existing: ${tag}\n`,
      );
      writeFileSync(
        join(dir.path, "handover.yaml"),
        `task: "Add a limit"\nid: LIMIT-1\ncontext_scope:\n  repos:\n    - name: backend-api\n      paths: ["src/"]\n  max_files: 10\n  max_tokens: 10000\nownership:\n  primary_repo: backend-api\nbudgets:\n  session_total: 1000000\n`,
      );
      process.env.BULKHEAD_HOME = join(dir.path, "home");
      const args = ["dispatch", join(dir.path, "bulkhead.yaml"), "--spec", join(dir.path, "handover.yaml"), "--agent", "claude-code"];
      const dispatched = await cli([...args, "--gateway", socketPath, "--json"]);
      expect(dispatched.code, dispatched.out + dispatched.err).toBe(0);
      const result = JSON.parse(dispatched.out) as {
        session: string;
        job: string;
        prompt: string;
        stoppedBy: string | null;
        report: { totalTokens: number; usage: unknown };
      };
      // The report is the gateway's, from what the upstream sent, not the agent's stream-json.
      const messages = upstream.requestsFor("anthropic-messages");
      const sent = messages
        .filter((received) => received.sentUsage !== undefined)
        .map((received) => usageOnly(normalizeUsage("anthropic", received.sentUsage)))
        .reduce(addUsage, emptyUsage());
      expect(result.report.usage).toEqual(sent);
      expect(result.report.totalTokens).toBe(sent.inputTokens + sent.outputTokens);
      expect(sent).toMatchObject({ cacheReadTokens: 1_200, cacheWrite5mTokens: 1_240, outputTokens: 39 });
      expect(result.stoppedBy).toBeNull();
      expect(new Set(messages.map((received) => received.headers["x-api-key"]))).toEqual(new Set(["sk-ant-test"]));
      // The prompt came from the spec and its scope, and it is what the model was asked.
      expect(result.prompt).toMatch(/^# Task LIMIT-1: Add a limit\n/);
      expect(result.prompt).toMatch(/- `backend-api\/src\/index\.ts`: \d+ tokens/);
      const first = upstream.requestsFor("anthropic-messages").find((received) => received.rawBody.includes("LIMIT-1"));
      expect(first?.rawBody).toContain("Do not commit, push, or create branches");
      const session = getSession(result.session);
      expect(session.state.gateway?.baseUrl).toBe("http://127.0.0.1:4000");
      const file = session.readWorkspaceFile("backend-api", "src/limit.ts");
      expect(file.kind === "file" && file.content.toString("utf8")).toBe("export const limit = 5;\n");

      // dispatch's gateway is gone with it; one served again at the same socket reaches the session.
      gateway = await createGateway({
        listen: { path: socketPath },
        upstreams: { anthropic: upstream.url },
        credentials: { anthropic: { apiKey: "sk-ant-test" } },
        env: {},
      });
      const { token } = gateway.addSession({
        sessionId: "LIMIT-1",
        budget: createBudget({ id: "LIMIT-1", limits: { sessionTotal: 1_000_000 } }),
      });

      const followed = await cli([
        "inject",
        result.session,
        "--follow",
        "--agent",
        "claude-code",
        "--prompt",
        "Anything left?",
        "--resume",
        result.job,
        "--token",
        token,
      ]);
      expect(followed.code).toBe(0);
      const lines = followed.out.trim().split("\n");
      expect(lines[0]).toMatch(/^● agent session [0-9a-f-]{36}/);
      expect(lines).toContain("  Resumed: nothing left.");
      expect(lines.at(-1)).toMatch(/^✓ Resumed: nothing left\./);
      expect(followed.out).not.toContain('{"type"');
      await session.remove({ force: true });
      await gateway.close();

      // The spec's budgets hold on the wire: a session total the agent's first prompt cannot fit
      // in is refused by the gateway before the model sees it, and dispatch exits 2.
      const before = upstream.requestsFor("anthropic-messages").length;
      writeFileSync(
        join(dir.path, "tight.yaml"),
        readFileSync(join(dir.path, "handover.yaml"), "utf8").replace("session_total: 1000000", "session_total: 2000"),
      );
      const tight = await cli([
        "dispatch",
        join(dir.path, "bulkhead.yaml"),
        "--spec",
        join(dir.path, "tight.yaml"),
        "--agent",
        "claude-code",
        "--json",
      ]);
      const refused = JSON.parse(tight.out) as { session: string; stoppedBy: string; report: { totalTokens: number } };
      expect(tight.code).toBe(2);
      expect(refused).toMatchObject({ stoppedBy: "session-total", report: { totalTokens: 0 } });
      expect(upstream.requestsFor("anthropic-messages")).toHaveLength(before);
      await getSession(refused.session).remove({ force: true });
    } finally {
      await gateway?.close();
      delete process.env.BULKHEAD_HOME;
      for (const [name, value] of [
        ["BULKHEAD_UPSTREAM_ANTHROPIC", saved.upstream],
        ["ANTHROPIC_API_KEY", saved.key],
      ] as const)
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
    }
  });
});

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { agentImage } from "@bulkhead/agents";
import { createBudget } from "@bulkhead/budget";
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
  it("dispatches the spec's prompt to the agent in a sealed session, then follows a resumed run as condensed events", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "backend-api"), { "src/index.ts": "export {};\n" });
    await using upstream = await createScriptedUpstream({
      respond: (received) => (Array.isArray(received.body?.tools) && received.body.tools.length > 0 ? undefined : { text: "title" }),
      turns: [
        {
          toolUses: [{ name: "Write", input: { file_path: "/workspace/backend-api/src/limit.ts", content: "export const limit = 5;\n" } }],
        },
        { text: "Done: src/limit.ts." },
        { text: "Resumed: nothing left." },
      ],
    });
    mkdirSync(join(dir.path, "gateway"));
    const socketPath = join(dir.path, "gateway", "gateway.sock");
    const gateway = await createGateway({
      listen: { path: socketPath },
      upstreams: { anthropic: upstream.url },
      credentials: { anthropic: { apiKey: "sk-ant-test" } },
      env: {},
    });
    try {
      const { token } = gateway.addSession({
        sessionId: "LIMIT-1",
        budget: createBudget({ id: "LIMIT-1", limits: { sessionTotal: 1_000_000 } }),
      });
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
      // No gateway token, no agent run: refused before anything starts.
      delete process.env.BULKHEAD_GATEWAY_TOKEN;
      expect((await cli([...args, "--gateway", socketPath])).err).toContain("gateway token");
      const dispatched = await cli([...args, "--gateway", socketPath, "--token", token, "--json"]);
      expect(dispatched.code, dispatched.out).toBe(0);
      const result = JSON.parse(dispatched.out) as { session: string; job: string; prompt: string };
      // The prompt came from the spec and its scope, and it is what the model was asked.
      expect(result.prompt).toMatch(/^# Task LIMIT-1: Add a limit\n/);
      expect(result.prompt).toMatch(/- `backend-api\/src\/index\.ts`: \d+ tokens/);
      const first = upstream.requestsFor("anthropic-messages").find((received) => received.rawBody.includes("LIMIT-1"));
      expect(first?.rawBody).toContain("Do not commit, push, or create branches");
      const session = getSession(result.session);
      expect(session.state.gateway?.baseUrl).toBe("http://127.0.0.1:4000");
      const file = session.readWorkspaceFile("backend-api", "src/limit.ts");
      expect(file.kind === "file" && file.content.toString("utf8")).toBe("export const limit = 5;\n");

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
    } finally {
      await gateway.close();
      delete process.env.BULKHEAD_HOME;
    }
  });
});

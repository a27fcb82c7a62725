import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { agentImage, claudeCode } from "@bulkhead/agents";
import { normalizeUsage, usageOnly } from "@bulkhead/budget";
import { addUsage, emptyUsage, InvalidArgumentError } from "@bulkhead/core";
import { createGateway } from "@bulkhead/gateway";
import { buildImage, defineProject, getSession } from "@bulkhead/sandbox";
import { createScriptedUpstream, createTempDir, initRepo } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { dispatch } from "./composites.js";

describe("dispatch with a gateway of the caller's", () => {
  it("adds the session with the spec's budgets and reports the gateway tracker's usage, not the agent's", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "backend-api"), { "src/index.ts": "export {};\n" });
    await using upstream = await createScriptedUpstream({
      turns: [
        {
          toolUses: [{ name: "Write", input: { file_path: "/workspace/backend-api/src/limit.ts", content: "export const limit = 5;\n" } }],
          usage: { uncachedInputTokens: 400, cacheWrite1hTokens: 70, outputTokens: 25 },
        },
        { text: "Done.", usage: { uncachedInputTokens: 20, cacheReadTokens: 470, outputTokens: 3 } },
      ],
    });
    mkdirSync(join(dir.path, "gateway"));
    const socketPath = join(dir.path, "gateway", "gateway.sock");
    await using gateway = await createGateway({
      listen: [{ path: socketPath }, { host: "127.0.0.1", port: 0 }],
      upstreams: { anthropic: upstream.url },
      credentials: { anthropic: { apiKey: "sk-ant-test" } },
      env: {},
    });
    const { tag } = await buildImage(
      defineProject({
        name: "dispatch-gateway",
        repos: [{ name: "backend-api", path: join(dir.path, "backend-api") }],
        image: agentImage({ agent: "claude-code" }),
      }),
    );
    writeFileSync(
      join(dir.path, "bulkhead.yaml"),
      `name: dispatch-gateway\nrepos:\n  - name: backend-api\n    path: backend-api\nimage:\n  existing: ${tag}\n`,
    );
    writeFileSync(
      join(dir.path, "handover.yaml"),
      `task: "Add a limit"\nid: LIMIT-3\ncontext_scope:\n  repos:\n    - name: backend-api\n      paths: ["src/"]\n  max_files: 10\n  max_tokens: 10000\nownership:\n  primary_repo: backend-api\nbudgets:\n  generation: 5000\n  session_total: 1000000\n`,
    );
    process.env.BULKHEAD_HOME = join(dir.path, "home");
    try {
      const result = await dispatch(join(dir.path, "bulkhead.yaml"), join(dir.path, "handover.yaml"), {
        log: () => undefined,
        agent: { provider: claudeCode(), gateway },
      });
      expect(result.exitCode).toBe(0);
      expect(result.stoppedBy).toBeNull();
      const sent = upstream
        .requestsFor("anthropic-messages")
        .map((received) => usageOnly(normalizeUsage("anthropic", received.sentUsage)))
        .reduce(addUsage, emptyUsage());
      expect(sent).toMatchObject({ uncachedInputTokens: 420, cacheReadTokens: 470, cacheWrite1hTokens: 70, outputTokens: 28 });
      expect(result.report.usage).toEqual(sent);
      // The spec's generation budget acted on the wire: max_tokens went upstream clamped to it.
      expect(upstream.requestsFor("anthropic-messages")[0]!.body!.max_tokens).toBe(5_000);
      await getSession(result.session).remove({ force: true });

      // A gateway a sealed session cannot reach (no unix socket) is refused before anything starts.
      await using tcpOnly = await createGateway({
        upstreams: { anthropic: upstream.url },
        credentials: { anthropic: { apiKey: "k" } },
        env: {},
      });
      await expect(
        dispatch(join(dir.path, "bulkhead.yaml"), join(dir.path, "handover.yaml"), {
          log: () => undefined,
          agent: { provider: claudeCode(), gateway: tcpOnly },
        }),
      ).rejects.toThrow(InvalidArgumentError);
    } finally {
      delete process.env.BULKHEAD_HOME;
    }
  });
});

// The README's first example, as a file: `npm run typecheck` compiles it and
// readme-example.test.ts checks the README shows exactly this. It needs a model: a real key
// (ANTHROPIC_API_KEY, kept on the host by the gateway) or BULKHEAD_UPSTREAM_ANTHROPIC.
// --- README ---
import { mkdirSync } from "node:fs";
import { agentImage, claudeCode, formatAgentEvent, startAgent } from "@bulkhead/agents";
import { createBudget } from "@bulkhead/budget";
import { loadTaskSpec, resolveScope } from "@bulkhead/core";
import { createGateway } from "@bulkhead/gateway";
import { renderTaskPrompt } from "@bulkhead/handover";
import { createSession, defineProject } from "@bulkhead/sandbox";

const spec = await loadTaskSpec("handover.yaml");
const scope = await resolveScope(spec, { repos: { "backend-api": "../backend-api" } });

// The gateway holds the key (ANTHROPIC_API_KEY never enters the box) and meters every call.
mkdirSync("/tmp/bulkhead-gateway", { recursive: true });
const socketPath = "/tmp/bulkhead-gateway/gateway.sock";
await using gateway = await createGateway({ listen: { path: socketPath } });
const budget = createBudget({ id: "rate-limit", limits: { generation: 10_000, sessionTotal: 120_000 } });
const { token } = gateway.addSession({ sessionId: "rate-limit", budget });

// A sealed box (network none; the gateway's socket is its only route), Claude Code baked offline.
const project = defineProject({
  name: "api",
  repos: [{ name: "backend-api", path: "../backend-api" }],
  image: agentImage({ agent: "claude-code" }),
});
await using session = await createSession(project, { gateway: { socketPath } });
const prompt = renderTaskPrompt({ spec, scope });
const run = await startAgent(session, { provider: claudeCode(), prompt, gateway: { token } });
for await (const event of run.events()) console.log(formatAgentEvent(event)); // → Write backend-api/src/…
console.log(gateway.stats("rate-limit")); // tokens and dollars from the upstream's answers, cache hit rate

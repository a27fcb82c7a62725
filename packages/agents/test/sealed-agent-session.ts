// The set-up both agent tests share: the real gateway on a unix socket (holding the upstream key
// and swapping a session token for it), an agent image baked offline, and a session sealed to that
// socket.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createBudget } from "@bulkhead/budget";
import { createGateway, type Gateway } from "@bulkhead/gateway";
import { buildImage, createSession, defineProject, type Session } from "@bulkhead/sandbox";
import { agentImage } from "../src/index.js";

export interface SealedAgentSession {
  gateway: Gateway;
  session: Session;
  /** The session's gateway token: what the agent holds instead of the key. */
  token: string;
}

export async function startSealedAgentSession({
  dir,
  agent,
  upstream,
  apiKey,
}: {
  /** A temp directory holding the `api` repo; the socket and the sandbox home go beside it. */
  dir: string;
  agent: "claude-code" | "codex";
  upstream: string;
  apiKey: string;
}): Promise<SealedAgentSession> {
  const provider = agent === "claude-code" ? "anthropic" : "openai";
  const name = agent === "claude-code" ? "agents-claude" : "agents-codex";
  mkdirSync(join(dir, "gateway"));
  const socketPath = join(dir, "gateway", "gateway.sock");
  const gateway = await createGateway({
    listen: { path: socketPath },
    upstreams: { [provider]: upstream },
    credentials: { [provider]: { apiKey } },
    env: {},
  });
  const { token } = gateway.addSession({
    sessionId: name,
    budget: createBudget({ id: name, limits: { sessionTotal: 1_000_000 } }),
  });
  const project = defineProject({ name, repos: [{ name: "api", path: join(dir, "api") }], image: agentImage({ agent }) });
  const { tag } = await buildImage(project);
  const session = await createSession(project, { tag, home: join(dir, "home"), gateway: { socketPath } });
  return { gateway, session, token };
}

// Test setup shared by the gateway's Claude Code and Codex tests (not part of the package: only
// the tests import it): a scripted upstream, a gateway in front of it holding a canary key, a
// work directory and a home for the CLI, all removed after each test.
import { createScriptedUpstream, createTempDir, type ScriptedUpstream } from "@bulkhead/test-utils";
import { afterEach } from "vitest";
import { createGateway, type Gateway } from "../src/index.js";

const cleanups: (() => Promise<void> | void)[] = [];

/** Registers the per-test cleanup; call once at the top of a test file. */
export function cleanUpAfterEach(): void {
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
}

export async function setupAgentGateway(
  provider: "anthropic" | "openai",
  canary: string,
  script: (work: string) => Parameters<typeof createScriptedUpstream>[0],
): Promise<{ upstream: ScriptedUpstream; gateway: Gateway; work: string; home: string }> {
  const work = createTempDir(`bulkhead-${provider}-work-`);
  const home = createTempDir(`bulkhead-${provider}-home-`);
  const upstream = await createScriptedUpstream(script(work.path));
  const gateway = await createGateway({
    upstreams: { [provider]: upstream.url },
    credentials: { [provider]: { apiKey: canary } },
    env: {},
  });
  cleanups.push(
    () => work.remove(),
    () => home.remove(),
    () => upstream.close(),
    () => gateway.close(),
  );
  return { upstream, gateway, work: work.path, home: home.path };
}

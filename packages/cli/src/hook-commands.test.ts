// The work hook from the command line, on a real hook directory: add with dependencies, claim with
// a TTL, renew, fail (open again, an attempt counted), release (open again, no attempt), complete.
import { join } from "node:path";
import { createTempDir } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { main } from "./main.js";

async function json(
  args: string[],
): Promise<{ code: number; body: Record<string, unknown> & { error?: { code: string; message: string } } }> {
  let out = "";
  const code = await main([...args, "--json"], { stdout: (text) => void (out += text), stderr: () => undefined });
  return { code, body: JSON.parse(out) as Record<string, unknown> & { error?: { code: string; message: string } } };
}

describe("bulkhead hook", () => {
  it("adds, claims with a TTL, renews, fails, releases and completes tasks", async () => {
    await using dir = createTempDir();
    const hook = join(dir.path, "hook");
    expect((await json(["hook", "add", hook, "types", "--payload", '{"spec":"types.yaml"}'])).code).toBe(0);
    expect((await json(["hook", "add", hook, "routes", "--depends-on", "types"])).code).toBe(0);
    expect((await json(["hook", "add", hook, "types"])).code).toBe(1);
    const ids = async () => ((await json(["hook", "ready", hook])).body as unknown as { id: string }[]).map((task) => task.id);
    expect(await ids()).toEqual(["types"]);

    const before = Date.now();
    const claim = (await json(["hook", "claim", hook, "types", "--worker", "agent-1", "--ttl", "30m"])).body as unknown as {
      token: string;
      expiresAt: number;
    };
    expect(claim.expiresAt).toBeGreaterThanOrEqual(before + 30 * 60_000);
    expect(await ids()).toEqual([]);
    const renewed = (await json(["hook", "renew", hook, "types", "--token", claim.token, "--ttl", "2h"])).body as unknown as {
      expiresAt: number;
    };
    expect(renewed.expiresAt).toBeGreaterThanOrEqual(before + 2 * 3_600_000);

    // Failed: open again with an attempt counted; the old token no longer holds it.
    expect((await json(["hook", "fail", hook, "types", "--token", claim.token, "--reason", "tests fail"])).code).toBe(0);
    expect((await json(["hook", "renew", hook, "types", "--token", claim.token])).body.error).toMatchObject({ code: "CLAIM_REFUSED" });
    const second = (await json(["hook", "claim", hook, "types", "--worker", "agent-2"])).body as unknown as { token: string };
    expect((await json(["hook", "release", hook, "types", "--token", second.token])).code).toBe(0);
    const third = (await json(["hook", "claim", hook, "types", "--worker", "agent-3"])).body as unknown as { token: string };
    expect((await json(["hook", "complete", hook, "types", "--token", third.token])).code).toBe(0);
    expect(await ids()).toEqual(["routes"]);
    const { createWorkHook } = await import("@bulkhead/git-lead");
    const types = (await createWorkHook({ dir: hook }).tasks()).find((task) => task.id === "types")!;
    // Three claims, one released without an attempt: two attempts.
    expect(types).toMatchObject({ state: "complete", attempts: 2, payload: { spec: "types.yaml" } });
  });
});

import { request } from "node:http";
import { join } from "node:path";
import { createBudget } from "@bulkhead/budget";
import type { BulkheadError } from "@bulkhead/core";
import { InvalidArgumentError } from "@bulkhead/core";
import { createScriptedUpstream, createTempDir } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { createGateway, GatewayFailedError } from "./index.js";

const body = JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 10, messages: [{ role: "user", content: "hi" }] });

/** A POST over a unix socket (what the forwarder inside a session sends). */
function postOverSocket(socketPath: string, token: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        socketPath,
        path: "/v1/messages",
        method: "POST",
        headers: { "x-api-key": token, "content-type": "application/json", "anthropic-version": "2023-06-01" },
      },
      (response) => {
        let text = "";
        response.on("data", (chunk: Buffer) => (text += chunk.toString()));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, text }));
      },
    );
    outgoing.once("error", reject);
    outgoing.end(body);
  });
}

describe("gateway lifecycle", () => {
  it("serves the same sessions on a unix socket and a loopback port", async () => {
    await using dir = createTempDir();
    await using upstream = await createScriptedUpstream({ whenEmpty: { text: "over the socket" } });
    const socketPath = join(dir.path, "gateway.sock");
    await using gateway = await createGateway({
      listen: [{ path: socketPath }, { host: "127.0.0.1", port: 0 }],
      upstreams: { anthropic: upstream.url },
      credentials: { anthropic: { apiKey: "sk-ant-socket-test" } },
      env: {},
    });
    expect(gateway.addresses).toEqual([{ path: socketPath }, { host: "127.0.0.1", port: expect.any(Number) }]);
    const session = gateway.addSession({ sessionId: "sock", budget: createBudget({ limits: {} }) });
    const answer = await postOverSocket(socketPath, session.token);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text).content[0].text).toBe("over the socket");
    const overTcp = await fetch(`${gateway.url}/v1/messages`, { method: "POST", headers: { "x-api-key": session.token }, body });
    expect(overTcp.status).toBe(200);
    expect(gateway.stats("sock").calls).toBe(2);
  });

  it("validates its options and sessions, and revokes a removed session's token", async () => {
    await expect(createGateway({ upstreams: { anthropic: "ftp://example" } })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(createGateway({ maxBodyBytes: -1 } as never)).rejects.toThrow(/maxBodyBytes/);
    await using gateway = await createGateway({ env: {} });
    expect(() => gateway.addSession({ sessionId: "x", budget: {} as never })).toThrow(/Budget from createBudget/);
    const session = gateway.addSession({ sessionId: "x", budget: createBudget({ limits: {} }) });
    expect(() => gateway.addSession({ sessionId: "x", budget: createBudget({ limits: {} }) })).toThrow(/already live/);
    expect(session.token).toMatch(/^bh-[A-Za-z0-9_-]{43}$/);
    session.remove();
    const revoked = await fetch(`${gateway.url}/v1/messages`, { method: "POST", headers: { "x-api-key": session.token }, body });
    expect(revoked.status).toBe(401);
    // No credential on the host: a clear error, no forwarding, nothing reserved.
    const budget = createBudget({ limits: { sessionTotal: 1_000 } });
    const other = gateway.addSession({ sessionId: "y", budget });
    const missing = await fetch(`${gateway.url}/v1/messages`, { method: "POST", headers: { "x-api-key": other.token }, body });
    expect(await missing.json()).toMatchObject({ error: { message: expect.stringContaining("ANTHROPIC_API_KEY") } });
    expect(budget.reserved("sessionTotal")).toBe(0);
  });

  it("fails to start on an address in use with a GatewayFailedError", async () => {
    await using first = await createGateway({ env: {} });
    const port = (first.addresses[0] as { port: number }).port;
    const error = await createGateway({ listen: { port }, env: {} }).catch((caught: unknown) => caught);
    expect(GatewayFailedError.isInstance(error)).toBe(true);
    expect((error as BulkheadError).code).toBe("GATEWAY_FAILED");
  });

  it("close() ends a stream in flight with an API error event and books what was delivered", async () => {
    await using upstream = await createScriptedUpstream({ whenEmpty: { text: "abcdef", chunkChars: 1, stallAfterEvents: 5 } });
    const gateway = await createGateway({
      upstreams: { anthropic: upstream.url },
      credentials: { anthropic: { apiKey: "sk-ant-close-test" } },
      env: {},
    });
    const budget = createBudget({ limits: { sessionTotal: 100_000 } });
    const session = gateway.addSession({ sessionId: "c", budget });
    const response = await fetch(`${gateway.url}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": session.token },
      body: JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 100, stream: true, messages: [] }),
    });
    const reader = response.body!.getReader();
    await reader.read();
    await gateway.close();
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    expect(text).toContain("event: error");
    expect(text).toContain("the gateway is closing");
    expect(gateway.audit("c")[0]).toMatchObject({ outcome: "upstream-dropped", usageSource: "delivered" });
    expect(budget.reserved("sessionTotal")).toBe(0);
    expect(() => gateway.addSession({ sessionId: "d", budget })).toThrow(GatewayFailedError);
  });
});

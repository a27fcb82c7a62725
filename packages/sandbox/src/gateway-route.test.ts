import { chmodSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect, type Server } from "node:net";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { createScriptedUpstream, createTempDir, initRepo, type ScriptedUpstream, type TempDir } from "@bulkhead/test-utils";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { gatewayContainerParts, sharedLibraries } from "./gateway-route.js";
import { defineProject, type Project } from "./project-config.js";
import { SessionError } from "./sandbox-errors.js";
import { createSession, getSession, type Session } from "./index.js";

const image = inject("testImage");

/** A unix socket relaying to a TCP server: a stand-in for the gateway's socket. */
async function socketRelay(socketPath: string, port: number): Promise<Server> {
  const server = createServer((client) => {
    const upstream = connect(port, "127.0.0.1");
    client.pipe(upstream).pipe(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  // The box's user is not root: it needs write permission on the socket to connect.
  chmodSync(socketPath, 0o666);
  return server;
}

/** This machine's own addresses (no loopback), and the Docker bridge's: what a box must not reach. */
function hostAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((entry) => entry !== undefined && !entry.internal && entry.family === "IPv4")
    .map((entry) => entry!.address);
}

describe("a session whose only route is the gateway", () => {
  let dir: TempDir;
  let upstream: ScriptedUpstream;
  let relay: Server;
  let socketPath: string;
  let project: Project;
  let session: Session;

  beforeAll(async () => {
    dir = createTempDir();
    initRepo(join(dir.path, "api"), { "README.md": "api\n" });
    upstream = await createScriptedUpstream({ whenEmpty: { text: "pong", usage: { uncachedInputTokens: 3, outputTokens: 1 } } });
    mkdirSync(join(dir.path, "gateway"));
    socketPath = join(dir.path, "gateway", "gateway.sock");
    relay = await socketRelay(socketPath, Number(new URL(upstream.url).port));
    project = defineProject({ name: "sealed", repos: [{ name: "api", path: join(dir.path, "api") }], image: { existing: image } });
    session = await createSession(project, { home: join(dir.path, "home"), gateway: { socketPath } });
  });
  afterAll(async () => {
    await session?.remove({ force: true }).catch(() => undefined);
    relay?.close();
    await upstream?.close();
    dir?.remove();
  });

  it("reaches the gateway at the base URL on the box's own loopback", async () => {
    expect(session.state.gateway).toEqual({ socketPath, port: 4000, baseUrl: "http://127.0.0.1:4000" });
    const body = JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 16, messages: [{ role: "user", content: "ping" }] });
    const result = await session.exec([
      "sh",
      "-c",
      'wget -q -O- --header "content-type: application/json" --post-data "$1" "$BULKHEAD_GATEWAY_URL/v1/messages"',
      "sh",
      body,
    ]);
    expect(result.stderr).toBe("");
    expect(JSON.parse(result.stdout)).toMatchObject({ type: "message", content: [{ type: "text", text: "pong" }] });
    expect(upstream.requestsFor("anthropic-messages").at(-1)?.body).toMatchObject({ messages: [{ content: "ping" }] });
    const security = await session.inspectSecurity();
    expect(security.networkMode).toBe("none");
    expect(security.binds.filter((bind) => bind.includes("/.bulkhead/"))).toSatisfy((binds: string[]) =>
      binds.every((bind) => bind.endsWith(":ro")),
    );
  });

  it("has no interface but lo, no route, and no address of this machine answers", async () => {
    const devices = await session.exec(["cat", "/proc/net/dev"]);
    const interfaces = devices.stdout
      .split("\n")
      .slice(2)
      .filter(Boolean)
      .map((line) => line.split(":")[0]!.trim());
    expect(interfaces).toEqual(["lo"]);
    // The routing table holds only its header line: no default route, no route to anywhere.
    const routes = await session.exec(["cat", "/proc/net/route"]);
    expect(routes.stdout.trim().split("\n")).toHaveLength(1);
    const upstreamPort = new URL(upstream.url).port;
    // Each host address is this machine's; a connect without a route fails before sending anything.
    for (const address of [...hostAddresses(), "192.0.2.1"]) {
      const probe = await session.exec(["nc", "-w", "2", address, upstreamPort]);
      expect(probe.exitCode, address).not.toBe(0);
      expect(probe.stderr, address).toMatch(/unreachable/i);
    }
    // 127.0.0.1 is the box's own loopback: the upstream's port on the host's loopback is not there.
    const loopback = await session.exec(["nc", "-w", "2", "127.0.0.1", upstreamPort]);
    expect(loopback.exitCode).not.toBe(0);
    expect(loopback.stderr).toMatch(/refused/i);
    // No DNS: a lookup has no server it could reach.
    const dns = await session.exec(["nslookup", "example.com"]);
    expect(dns.exitCode).not.toBe(0);
  });

  it("keeps its route after the container restarts", async () => {
    await session.stop();
    await session.start();
    const again = getSession(session.id, { home: join(dir.path, "home") });
    let answer = "";
    // The forwarder is the container's first process: it comes back with it (a few polls while it starts).
    for (let attempt = 0; attempt < 100 && !answer.includes("pong"); attempt++) {
      answer = (await again.exec(["sh", "-c", 'wget -q -O- --post-data "{}" "$BULKHEAD_GATEWAY_URL/v1/messages" 2>&1'])).stdout;
      if (!answer.includes("pong")) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(answer).toContain("pong");
  });

  it("refuses a route it cannot seal, before anything is created", async () => {
    const user = "1000:1000";
    const paths = { forwarderFile: "/tmp/forward.mjs", readyFile: "/workspace/.bulkhead/ready", user };
    expect(() => gatewayContainerParts({ socketPath: join(dir.path, "nope.sock") }, { ...paths, network: "none" })).toThrow(
      /not a unix socket/,
    );
    expect(() => gatewayContainerParts({ socketPath }, { ...paths, network: "bridge" })).toThrow(/keeps network "none"/);
    expect(() => gatewayContainerParts({ socketPath: "relative.sock" }, { ...paths, network: "none" })).toThrow(/absolute path/);
    writeFileSync(join(dir.path, "gateway", "secret.txt"), "x");
    try {
      expect(() => gatewayContainerParts({ socketPath }, { ...paths, network: "none" })).toThrow(/secret.txt beside the gateway socket/);
      await expect(createSession(project, { home: join(dir.path, "home2"), gateway: { socketPath } })).rejects.toThrow(SessionError);
    } finally {
      rmSync(join(dir.path, "gateway", "secret.txt"));
    }
    chmodSync(socketPath, 0o600);
    try {
      expect(() => gatewayContainerParts({ socketPath }, { ...paths, network: "none" })).toThrow(/cannot connect/);
    } finally {
      chmodSync(socketPath, 0o666);
    }
  });

  it("finds the loader and libraries of a dynamic node, none for a static busybox", () => {
    const libraries = sharedLibraries(process.execPath);
    expect(libraries[0]?.name).toMatch(/^ld-linux/);
    expect(libraries.map((library) => library.name)).toContain("libc.so.6");
    expect(sharedLibraries("/bin/busybox")).toEqual([]);
  });
});

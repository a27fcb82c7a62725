import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { sleep, validateOptions, type SandboxBackend } from "@bulkhead/core";
import { z } from "zod";
import { SessionError } from "./sandbox-errors.js";

/** Where the route's parts appear inside the box. */
const IN_BOX = { gateway: "/.bulkhead/gateway", forwarder: "/.bulkhead/forwarder" } as const;

/**
 * A session whose only route out is a model gateway on the host, reached through its unix socket.
 * The box keeps `network: none` (only `lo`, no route, no DNS); the socket's directory is mounted
 * read-only and a forwarder on the box's own loopback relays `http://127.0.0.1:<port>` to it.
 */
export const gatewayRouteSchema = z.strictObject({
  /** The gateway's unix socket on the host. Its directory is mounted: keep nothing else in it. */
  socketPath: z.string().regex(/^\//, "expected an absolute path to the gateway's unix socket"),
  /** The port the forwarder listens on, on the box's 127.0.0.1. @default 4000 */
  port: z.number().int().min(1024).max(65535).default(4000),
  /**
   * The Linux `node` executable that runs the forwarder, mounted read-only with the shared
   * libraries it needs (so the image needs no runtime of its own). @default process.execPath
   */
  node: z.string().regex(/^\//).optional(),
});

export type GatewayRouteOptions = z.input<typeof gatewayRouteSchema>;

/** What a gateway route adds to a session, recorded in its state. */
export interface GatewayRoute {
  socketPath: string;
  port: number;
  /** The base URL an agent in the box uses: `http://127.0.0.1:<port>`. */
  baseUrl: string;
}

// Plain JavaScript the box's forwarder runs: one TCP listener on the box's own loopback, each
// connection piped to the gateway's socket. It writes a ready file once it listens, and never
// dies of one connection's error (as PID 1 it would take the session down with it).
const FORWARDER = `import net from "node:net";
import { writeFileSync } from "node:fs";
const [port, socketPath, ready] = process.argv.slice(2);
const server = net.createServer((client) => {
  const upstream = net.connect(socketPath);
  const close = () => { client.destroy(); upstream.destroy(); };
  client.on("error", close); upstream.on("error", close); client.on("close", close); upstream.on("close", close);
  client.pipe(upstream).pipe(client);
});
server.on("error", (error) => { console.error("bulkhead forwarder:", error.message); process.exit(70); });
server.listen(Number(port), "127.0.0.1", () => { try { writeFileSync(ready, String(process.pid)); } catch {} });
process.on("uncaughtException", (error) => console.error("bulkhead forwarder:", error.message));
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
`;

/** The forwarder's source, written into the session directory and mounted read-only. */
export function forwarderSource(): string {
  return FORWARDER;
}

/**
 * The shared libraries a dynamically linked executable needs, from `ldd`: `[loader, ...libs]`, or
 * `[]` for a static one. `name` is what the loader looks for (the soname), `path` the real file.
 */
export function sharedLibraries(executable: string): { name: string; path: string }[] {
  let output: string;
  try {
    output = execFileSync("ldd", [executable], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    // ldd exits 1 on a static executable ("not a dynamic executable").
    const text = `${(error as { stdout?: string }).stdout ?? ""}${(error as { stderr?: string }).stderr ?? ""}`;
    if (/not a dynamic executable|statically linked/.test(text)) return [];
    throw new SessionError("gateway", `cannot list the shared libraries of ${executable} with ldd: ${(error as Error).message}`);
  }
  if (/statically linked/.test(output)) return [];
  const loader = /^\s*(\/\S*ld-[^\s]*\.so[^\s]*)/m.exec(output)?.[1];
  const libraries = [...output.matchAll(/=>\s+(\/\S+)/g)].map((match) => match[1]!);
  if (!loader) throw new SessionError("gateway", `ldd names no program loader for ${executable}: use a glibc or static node`);
  return [loader, ...libraries].map((path) => ({ name: basename(path), path: realpathSync(path) }));
}

/**
 * Checks a gateway route before anything is created and returns what the container needs:
 * read-only binds (the socket's directory, the forwarder and its runtime), the forwarder as the
 * container's first process, and the base URL. Throws a SessionError naming what is wrong.
 * `sessionDir` holds the forwarder's source; `user` is the session's `uid:gid`.
 */
export function gatewayContainerParts(
  options: GatewayRouteOptions,
  { forwarderFile, readyFile, user, network }: { forwarderFile: string; readyFile: string; user: string; network: string },
): { route: GatewayRoute; binds: string[]; cmd: string[] } {
  const { socketPath, port, node = process.execPath } = validateOptions(gatewayRouteSchema, options, "options.gateway");
  if (network !== "none")
    throw new SessionError(
      "gateway",
      `a gateway session keeps network "none" (the gateway is its only route), but the project asks for "${network}": remove network from the project`,
    );
  if (!existsSync(socketPath) || !statSync(socketPath).isSocket())
    throw new SessionError("gateway", `${socketPath} is not a unix socket: start the gateway on it first`);
  if (/(docker|containerd)\.sock$/.test(realpathSync(socketPath)))
    throw new SessionError("gateway", `${socketPath} is the container engine's socket, never a gateway: it would give the box the host`);
  const directory = realpathSync(dirname(socketPath));
  // The directory is what the box sees: it must hold the gateway's socket and nothing else.
  const others = readdirSync(directory).filter((name) => name !== basename(socketPath));
  if (others.length > 0)
    throw new SessionError(
      "gateway",
      `${directory} holds ${others.slice(0, 3).join(", ")}${others.length > 3 ? ", ..." : ""} beside the gateway socket: the box would see them; give the socket a directory of its own`,
    );
  const [uid, gid] = user.split(":").map(Number) as [number, number | undefined];
  const socket = statSync(socketPath);
  // connect(2) on a unix socket needs write permission on it for the box's user.
  const writable = uid === 0 || (socket.uid === uid ? socket.mode & 0o200 : socket.gid === gid ? socket.mode & 0o020 : socket.mode & 0o002);
  if (!writable)
    throw new SessionError(
      "gateway",
      `the session user ${user} cannot connect to ${socketPath} (mode ${(socket.mode & 0o777).toString(8)}, owner ${socket.uid}:${socket.gid}): make the socket writable for it (chmod 666, or chown)`,
    );
  if (!existsSync(node)) throw new SessionError("gateway", `no node executable at ${node}: pass gateway.node`);
  const libraries = sharedLibraries(node);
  const binds = [
    `${directory}:${IN_BOX.gateway}:ro`,
    `${realpathSync(node)}:${IN_BOX.forwarder}/node:ro`,
    `${forwarderFile}:${IN_BOX.forwarder}/forward.mjs:ro`,
    ...libraries.map((library) => `${library.path}:${IN_BOX.forwarder}/lib/${library.name}:ro`),
  ];
  const run = [
    `${IN_BOX.forwarder}/node`,
    `${IN_BOX.forwarder}/forward.mjs`,
    String(port),
    `${IN_BOX.gateway}/${basename(socketPath)}`,
    readyFile,
  ];
  // The forwarder runs under its own loader and libraries, so it works in any image, even one
  // with no libc at all.
  const cmd =
    libraries.length === 0 ? run : [`${IN_BOX.forwarder}/lib/${libraries[0]!.name}`, "--library-path", `${IN_BOX.forwarder}/lib`, ...run];
  return { route: { socketPath, port, baseUrl: `http://127.0.0.1:${port}` }, binds, cmd };
}

/** Where the forwarder writes its ready file, inside the box and on the host. */
export function forwarderReadyPaths(workspace: string): { inBox: string; onHost: string } {
  return { inBox: "/workspace/.bulkhead/forwarder.ready", onHost: join(workspace, ".bulkhead", "forwarder.ready") };
}

/**
 * Writes the forwarder into the session directory and returns the container's parts for the
 * route (see {@link gatewayContainerParts}). Called by `createSession` before the container exists.
 */
export function prepareGatewayRoute(
  options: GatewayRouteOptions,
  { sessionDir, workspace, user, network }: { sessionDir: string; workspace: string; user: string; network: string },
): { route: GatewayRoute; binds: string[]; cmd: string[] } {
  const forwarderFile = join(sessionDir, "forward.mjs");
  const parts = gatewayContainerParts(options, { forwarderFile, readyFile: forwarderReadyPaths(workspace).inBox, user, network });
  writeFileSync(forwarderFile, FORWARDER, { mode: 0o644 });
  return parts;
}

/**
 * Waits until the forwarder listens (it writes its ready file), or its container stops: then the
 * container's log says why. Bounded by `attempts` polls of 20 ms so a broken runtime cannot hang.
 */
export async function waitForForwarder(
  workspace: string,
  backend: Pick<SandboxBackend, "inspect" | "logs">,
  instance: string,
  { attempts = 1500, abortSignal }: { attempts?: number; abortSignal?: AbortSignal | undefined } = {},
): Promise<void> {
  const ready = forwarderReadyPaths(workspace).onHost;
  const log = async () => (await backend.logs(instance).catch(() => "")).slice(-400) || "no output";
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (existsSync(ready)) return;
    if (attempt % 10 === 9 && (await backend.inspect(instance))?.state !== "running")
      throw new SessionError("gateway", `the gateway forwarder in the box stopped before it listened: ${await log()}`);
    await sleep(20, abortSignal, "createSession");
  }
  throw new SessionError("gateway", `the gateway forwarder in the box did not start listening; its log: ${await log()}`);
}

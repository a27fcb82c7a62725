import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { createTempDir } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { gatewaySocketState, socketIdentity } from "./gateway-socket.js";

/** A unix socket server that counts the connections it accepts. */
async function listening(path: string): Promise<{ server: Server; connections: () => number }> {
  let count = 0;
  const server = createServer((socket) => {
    count++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { server, connections: () => count };
}
const closed = (server: Server) => new Promise((resolve) => server.close(resolve));

describe("gatewaySocketState: what is at a session's gateway socket, by identity", () => {
  it("never connects through a link planted in the socket's place, even to a listening socket", async () => {
    await using dir = createTempDir();
    const socket = join(dir.path, "gateway.sock");
    const ours = await listening(socket);
    const recorded = socketIdentity(socket);
    await closed(ours.server);
    const other = await listening(join(dir.path, "other.sock"));
    try {
      rmSync(socket, { force: true });
      symlinkSync(join(dir.path, "other.sock"), socket);
      expect(await gatewaySocketState(socket, recorded)).toEqual({
        state: "foreign",
        reason: `${socket} is a symbolic link, not the socket dispatch created`,
      });
      // Without a recorded identity (a record from before they were kept), a link is refused too.
      expect((await gatewaySocketState(socket)).state).toBe("foreign");
      expect(other.connections()).toBe(0);
    } finally {
      await closed(other.server);
    }
  });

  it("connects only to the socket dispatch recorded: serving while it listens, and another socket in its place is foreign", async () => {
    await using dir = createTempDir();
    const socket = join(dir.path, "gateway.sock");
    expect(await gatewaySocketState(socket)).toEqual({ state: "absent" });
    const first = await listening(socket);
    const recorded = socketIdentity(socket);
    expect(recorded).toEqual({ dev: expect.stringMatching(/^\d+$/), ino: expect.stringMatching(/^\d+$/) });
    expect(await gatewaySocketState(socket, recorded)).toEqual({ state: "serving" });
    expect(first.connections()).toBe(1);

    // Another socket put at the same path (bound while the first exists, so its inode differs): not connected to.
    const second = await listening(join(dir.path, "second.sock"));
    await closed(first.server); // which unlinks the first's file
    renameSync(join(dir.path, "second.sock"), socket);
    try {
      expect(await gatewaySocketState(socket, recorded)).toEqual({
        state: "foreign",
        reason: `${socket} is another socket than the one dispatch created (its device and inode differ)`,
      });
      expect(second.connections()).toBe(0);
      // An older record has no identity: a socket (not a link) is still connected to, as before.
      expect(await gatewaySocketState(socket)).toEqual({ state: "serving" });
      expect(second.connections()).toBe(1);
    } finally {
      await closed(second.server);
    }
  });

  it("tells a socket left by a gateway that ended, a planted file and a directory apart", async () => {
    await using dir = createTempDir();
    const socket = join(dir.path, "gateway.sock");
    // A socket file no one listens on: bound by a server whose file was kept when it closed.
    const left = await listening(socket);
    const recorded = socketIdentity(socket);
    const kept = join(dir.path, "kept.sock");
    // Renamed away and back: the file (same inode) outlives its server.
    renameSync(socket, kept);
    await closed(left.server);
    renameSync(kept, socket);
    expect(await gatewaySocketState(socket, recorded)).toEqual({ state: "ended" });

    rmSync(socket);
    writeFileSync(socket, "not a socket");
    expect(await gatewaySocketState(socket, recorded)).toEqual({
      state: "foreign",
      reason: `${socket} is a file, not the socket dispatch created`,
    });
    expect(() => socketIdentity(socket)).toThrow("is not a unix socket");

    rmSync(socket);
    mkdirSync(socket);
    expect(await gatewaySocketState(socket, recorded)).toEqual({
      state: "blocked",
      reason: `${socket} is a directory, not the gateway's socket`,
    });
  });
});

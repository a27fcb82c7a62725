import { join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { createTempDir, initRepo, type TempDir } from "@bulkhead/test-utils";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { defineProject } from "./project-config.js";
import { createSession, openShell, type Session } from "./index.js";

describe("openShell: a person steps into a live session", () => {
  let dir: TempDir;
  let session: Session;

  beforeAll(async () => {
    dir = createTempDir();
    initRepo(join(dir.path, "api"), { "README.md": "api\n" });
    const project = defineProject({
      name: "shell",
      repos: [{ name: "api", path: join(dir.path, "api") }],
      image: { existing: inject("testImage") },
    });
    session = await createSession(project, { home: join(dir.path, "home") });
  });
  afterAll(async () => {
    await session?.remove({ force: true }).catch(() => undefined);
    dir?.remove();
  });

  it("runs an interactive TTY shell as the session user in its workdir, and returns its exit code", async () => {
    const stdin = new PassThrough();
    let screen = "";
    const stdout = Object.assign(
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          screen += chunk.toString("utf8");
          done();
        },
      }),
      { columns: 100, rows: 30 },
    );
    const opened = openShell(session, { stdin, stdout });
    stdin.write("echo sum-$((40+2)) $(id -u) $(pwd); [ -t 0 ] && echo is-a-tty; stty size\n");
    stdin.write("exit 3\n");
    const { exitCode } = await opened;
    expect(exitCode).toBe(3);
    expect(screen).toContain(`sum-42 ${session.state.user.split(":")[0]} /workspace/api`);
    expect(screen).toContain("is-a-tty");
    expect(screen).toContain("30 100");
  });

  it("refuses a stopped session and a bad command", async () => {
    await expect(openShell(session, { command: [] })).rejects.toThrow(/argument list/);
    await session.stop();
    await expect(openShell(session, { stdin: new PassThrough() })).rejects.toThrow(/not running/);
  });
});

import { join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { AbortedError } from "@bulkhead/core";
import { createTempDir, initRepo, type TempDir } from "@bulkhead/test-utils";
import Docker from "dockerode";
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

  it("ends on abort: the shell and the jobs it started are killed in the box, no exec is left, and AbortedError is thrown", async () => {
    const stdin = new PassThrough();
    let screen = "";
    let shown: () => void = () => undefined;
    const stdout = new Writable({
      write(chunk: Buffer, _encoding, done) {
        screen += chunk.toString("utf8");
        if (screen.includes("started-42")) shown();
        done();
      },
    });
    const controller = new AbortController();
    const opened = openShell(session, { stdin, stdout, abortSignal: controller.signal });
    // A background job and a foreground one: a shell's process group alone would not hold both.
    const ready = new Promise<void>((resolve) => (shown = resolve));
    stdin.write("sleep 4242 & echo started-$((40+2)); sleep 4343\n");
    await ready;
    const reason = new Error("the operator closed the shell");
    controller.abort(reason);
    const error = await opened.then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(AbortedError.isInstance(error)).toBe(true);
    expect((error as AbortedError).cause).toBe(reason);
    // Nothing of the shell is left in the box: no process of its session, and no exec still running.
    const { stdout: processes } = await session.exec([
      "/bin/sh",
      "-c",
      'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " < "$f"; echo; done',
    ]);
    expect(processes).not.toContain("sleep 4242");
    expect(processes).not.toContain("sleep 4343");
    expect(processes).toContain("/proc/"); // the listing itself ran, so its absence of sleeps means something
    const container = await new Docker().getContainer(session.instance).inspect();
    const execs = await Promise.all((container.ExecIDs ?? []).map((id) => new Docker().getExec(id).inspect()));
    expect(execs.filter((exec) => exec.Running)).toEqual([]);
    // An abort before the shell opens opens nothing.
    await expect(openShell(session, { stdin: new PassThrough(), stdout, abortSignal: AbortSignal.abort() })).rejects.toMatchObject({
      code: "ABORTED",
    });
  });

  it("refuses a stopped session and a bad command", async () => {
    await expect(openShell(session, { command: [] })).rejects.toThrow(/argument list/);
    await session.stop();
    await expect(openShell(session, { stdin: new PassThrough() })).rejects.toThrow(/not running/);
  });
});

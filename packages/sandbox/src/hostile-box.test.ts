import { spawn } from "node:child_process";
import {
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  ftruncateSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { createTempDir, docker, initRepo, type TempDir } from "@bulkhead/test-utils";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  createDockerBackend,
  createSession,
  DiskLimitError,
  EngineUnavailableError,
  getSession,
  InvalidProjectError,
  loadProject,
  MAX_PROJECT_BYTES,
  reconcile,
  SessionContainerMissingError,
  SessionError,
  SessionPausedError,
  WorkspaceFileTooLargeError,
  defineProject,
  type ProjectInput,
  type Session,
} from "./index.js";
import { engineSockets } from "./engine-socket.js";

// The hostile-workspace suite, container side: an agent (or a careless config) tries to reach
// the engine, the host's devices, the host's disk and memory, or to strand the session.
const image = inject("testImage");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it holds or the attempts run out; returns the last value. */
async function eventually<T>(check: () => Promise<T>, holds: (value: T) => boolean, attempts = 100): Promise<T> {
  let value = await check();
  for (let attempt = 0; attempt < attempts && !holds(value); attempt++) {
    await sleep(100);
    value = await check();
  }
  return value;
}

const paused = (session: Session) => session.backend.inspect(session.instance).then((info) => info?.state === "paused");
/** Processes in the container besides its idle init (pid 1 and the sleep it waits on) and the ps itself. */
async function strayProcesses(session: Session): Promise<string[]> {
  const { stdout } = await session.exec(["ps", "-o", "pid,args"]);
  return stdout
    .split("\n")
    .slice(1)
    .map((line) => line.trim())
    .filter((line) => line && !/^1 /.test(line) && !/sleep 3600$/.test(line) && !/ps -o pid,args$/.test(line));
}

describe("the engine, devices and root are refused by identity", () => {
  let dir: TempDir;
  let base: ProjectInput;
  beforeAll(() => {
    dir = createTempDir();
    initRepo(join(dir.path, "app"));
    base = { name: "hostile-box", repos: [{ name: "app", path: join(dir.path, "app") }], image: { existing: image } };
  });
  afterAll(() => dir.remove());

  it("refuses a hard link to the Docker socket, in a mounted directory or mounted itself, and a link to it", () => {
    const [socket] = engineSockets();
    expect(socket).toBeDefined();
    // A hard link must be on the socket's file system: the temp dir if it is there, else beside the socket.
    let holder = join(dir.path, "innocent");
    mkdirSync(join(holder, "deep"), { recursive: true });
    try {
      linkSync(socket!.path, join(holder, "deep", "api"));
    } catch {
      holder = mkdtempSync(join(dirname(socket!.path), "bulkhead-test-"));
      mkdirSync(join(holder, "deep"));
      linkSync(socket!.path, join(holder, "deep", "api"));
    }
    try {
      expect(statSync(join(holder, "deep", "api")).ino).toBe(statSync(socket!.path).ino);
      expect(() => defineProject({ ...base, mounts: [{ host: holder, container: "/data" }] })).toThrow(
        `mounts: the Docker socket is never mounted into a session (${holder} holds ${join(holder, "deep", "api")})`,
      );
      expect(() => defineProject({ ...base, mounts: [{ host: join(holder, "deep", "api"), container: "/data/api" }] })).toThrow(
        "the Docker socket is never mounted into a session",
      );
      symlinkSync(socket!.path, join(dir.path, "to-socket"));
      expect(() => defineProject({ ...base, mounts: [{ host: join(dir.path, "to-socket"), container: "/s" }] })).toThrow(
        "the Docker socket is never mounted into a session",
      );
      // A read-only repo is mounted too.
      initRepo(join(holder, "deep", "repo"));
      linkSync(socket!.path, join(holder, "deep", "repo", "sock"));
      expect(() =>
        defineProject({ ...base, repos: [...base.repos!, { name: "ro", path: join(holder, "deep", "repo"), mode: "mount-ro" }] }),
      ).toThrow("repos.ro: the Docker socket is never mounted into a session");
      // An innocent directory still mounts.
      mkdirSync(join(dir.path, "plain"));
      expect(defineProject({ ...base, mounts: [{ host: join(dir.path, "plain"), container: "/plain" }] }).mounts).toHaveLength(1);
    } finally {
      rmSync(holder, { recursive: true, force: true });
    }
  });

  it("passes only character or block device nodes, never a directory such as /dev", () => {
    const error = (() => {
      try {
        defineProject({ ...base, devices: { devices: [{ hostPath: "/dev" }] } });
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(InvalidProjectError);
    expect((error as InvalidProjectError).problems).toEqual([
      "devices: /dev is a directory, not a character or block device node: name each device itself (e.g. /dev/fuse)",
    ]);
    writeFileSync(join(dir.path, "not-a-device"), "x");
    expect(() => defineProject({ ...base, devices: { devices: [{ hostPath: join(dir.path, "not-a-device") }] } })).toThrow(
      "is a regular file, not a character or block device node",
    );
    expect(defineProject({ ...base, devices: { devices: [{ hostPath: "/dev/null" }] } }).devices.devices).toHaveLength(1);
  });

  it("runs a session as root, or in the socket's group, only with an explicit opt-out", () => {
    expect(() => defineProject({ ...base, security: { user: "0:0" } })).toThrow(
      'security.user "0:0" is root (uid 0) inside the container: use a non-root user, or set security.allowRootUser: true',
    );
    expect(() => defineProject({ ...base, security: { user: "0" } })).toThrow("is root (uid 0)");
    expect(defineProject({ ...base, security: { user: "0:0", allowRootUser: true } }).security.user).toBe("0:0");
    const [socket] = engineSockets();
    const group = `1000:${socket!.gid}`;
    expect(() => defineProject({ ...base, security: { user: group } })).toThrow(`which owns the engine socket ${socket!.path}`);
    expect(defineProject({ ...base, security: { user: group, allowEngineSocketGroup: true } }).security.user).toBe(group);
  });
});

describe("a hostile agent inside a session", () => {
  let dir: TempDir;
  let session: Session;
  let home: string;
  beforeAll(async () => {
    dir = createTempDir();
    home = join(dir.path, "home");
    initRepo(join(dir.path, "app"), { "src/index.ts": "export {};\n" });
    const project = defineProject({
      name: "hostile-box",
      repos: [{ name: "app", path: join(dir.path, "app") }],
      image: { existing: image },
      resources: { pids: 64, diskMb: 64 },
    });
    session = await createSession(project, { home });
  });
  afterAll(async () => {
    await session?.remove({ force: true }).catch(() => undefined);
    dir.remove();
  });

  it("leaves nothing of a fork bomb after an exec timeout, and the session stays usable", async () => {
    const result = await session.exec(["/bin/sh", "-c", "bomb() { bomb | bomb & }; bomb; sleep 600"], { timeoutMs: 1500 });
    expect(result.timedOut).toBe(true);
    expect(
      await eventually(
        () => strayProcesses(session),
        (left) => left.length === 0,
      ),
    ).toEqual([]);
    expect(await session.exec(["echo", "usable"])).toMatchObject({ exitCode: 0, stdout: "usable\n" });
  });

  it("job.kill() stops the job and every process it started", async () => {
    const job = await session.inject({ command: ["/bin/sh", "-c", "sleep 601 & sleep 602 & echo started; wait"] });
    await eventually(
      async () => (await job.logs().next()).value as string | undefined,
      (text) => text === "started\n",
    );
    await job.kill({ graceMs: 500 });
    expect((await job.wait()).exitCode).toBe(143);
    expect(
      await eventually(
        () => strayProcesses(session),
        (left) => left.length === 0,
      ),
    ).toEqual([]);
  });

  it("reads a huge file or log the agent left only up to a cap, never whole", async () => {
    // Sparse: 1.2 GB long, almost no disk. Read whole, it would be 1.2 GB of host memory.
    const huge = join(session.state.workspace, "app", "huge.bin");
    const descriptor = openSync(huge, "w");
    ftruncateSync(descriptor, 1.2e9);
    closeSync(descriptor);
    const before = process.memoryUsage().arrayBuffers;
    const error = (() => {
      try {
        session.readWorkspaceFile("app", "huge.bin");
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(WorkspaceFileTooLargeError);
    expect(error).toMatchObject({ sizeBytes: 1.2e9, maxBytes: 64 * 2 ** 20, step: "read" });
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(32 * 2 ** 20);
    expect(session.readWorkspaceFile("app", "src/index.ts")).toEqual({ kind: "file", content: Buffer.from("export {};\n") });
    rmSync(huge);
    // A 1.5 GB log (sparse, written on the host where the job's log goes).
    const job = await session.inject({ id: "loud", command: ["true"] });
    await job.wait();
    const log = join(session.state.workspace, ".bulkhead", "jobs", "loud.log");
    const logDescriptor = openSync(log, "w");
    ftruncateSync(logDescriptor, 1.5e9);
    closeSync(logDescriptor);
    let returned = 0;
    let last = "";
    let peak = 0;
    for await (const chunk of job.logs({ maxBytes: 8 * 2 ** 20 })) {
      returned += chunk.length;
      last = chunk;
      peak = Math.max(peak, chunk.length);
    }
    expect(last).toContain(`log output stops at ${8 * 2 ** 20} bytes; the full log is ${log}`);
    expect(returned).toBeLessThan(8 * 2 ** 20 + 1000);
    // Incremental: pieces of at most 1 MiB, never the whole log at once.
    expect(peak).toBeLessThanOrEqual(2 ** 20);
    rmSync(log);
    // Following a growing log yields each part once.
    const growing = await session.inject({ id: "grow", command: ["/bin/sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.3; done"] });
    let followed = "";
    for await (const chunk of growing.logs({ follow: true, pollMs: 50 })) followed += chunk;
    expect(followed).toBe("line 1\nline 2\nline 3\n");
  });

  it("stops the jobs of a workspace over resources.diskMb and refuses to harvest it", async () => {
    expect((await session.assertWithinDisk()).usedBytes).toBeLessThan(64 * 2 ** 20);
    const filler = await session.inject({
      id: "filler",
      command: ["/bin/sh", "-c", "dd if=/dev/zero of=/workspace/app/fill bs=1048576 count=80 2>/dev/null; echo filled; sleep 600"],
    });
    expect(await filler.wait()).toEqual({ exitCode: 137 });
    expect(session.jobs().find((job) => job.id === "filler")).toMatchObject({ exitCode: 137, stopped: "disk-limit" });
    const error = await session.assertWithinDisk().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DiskLimitError);
    expect((error as DiskLimitError).message).toContain("over resources.diskMb 64");
    await expect(session.inject({ command: ["true"] })).rejects.toBeInstanceOf(DiskLimitError);
    // Freed inside the session, it is usable again.
    expect((await session.exec(["rm", "/workspace/app/fill"])).exitCode).toBe(0);
    expect((await session.assertWithinDisk()).usedBytes).toBeLessThan(64 * 2 ** 20);
  });

  it("undoes a pause whose holder was killed: on the next exec, on start() and in reconcile", async () => {
    const pauseAndDie = async () => {
      const child = spawn(
        process.execPath,
        ["--import", "tsx", join(import.meta.dirname, "..", "test", "pause-and-die.ts"), home, session.id],
        {
          cwd: join(import.meta.dirname, ".."),
          stdio: ["ignore", "pipe", "inherit"],
        },
      );
      await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (data: Buffer) => data.toString().includes("paused") && resolve());
        child.on("exit", (code) => reject(new Error(`pause-and-die exited early (${code})`)));
      });
      const exited = new Promise((resolve) => child.on("exit", resolve));
      child.kill("SIGKILL");
      await exited;
      expect(await paused(session)).toBe(true);
    };
    await pauseAndDie();
    expect(await session.exec(["echo", "back"])).toMatchObject({ stdout: "back\n" });
    expect(await paused(session)).toBe(false);
    await pauseAndDie();
    await getSession(session.id, { home }).start();
    expect(await paused(session)).toBe(false);
    await pauseAndDie();
    expect((await reconcile({ home })).unpaused).toEqual([session.id]);
    expect(await paused(session)).toBe(false);
    // Paused outside bulkhead: an exec says so (typed), and start() unpauses.
    docker(["pause", `bulkhead-${session.id}`]);
    const error = await session.exec(["true"]).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SessionPausedError);
    expect((error as SessionPausedError).data).toMatchObject({ step: "exec", fault: "container-paused" });
    await session.start();
    expect(await session.exec(["echo", "running"])).toMatchObject({ stdout: "running\n" });
  });

  it("names a removed container and an engine that went away as typed session errors", async () => {
    const unreachable = getSession(session.id, {
      home,
      backend: createDockerBackend({ docker: new Docker({ socketPath: join(dir.path, "no-engine.sock") }) }),
    });
    const engineError = await unreachable.exec(["true"]).catch((caught: unknown) => caught);
    expect(engineError).toBeInstanceOf(EngineUnavailableError);
    expect((engineError as Error).message).toContain("the Docker engine does not answer");
    docker(["rm", "-f", `bulkhead-${session.id}`]);
    for (const call of [
      () => session.exec(["true"]),
      () => session.inject({ command: ["true"] }),
      () => session.start(),
      () => session.inspectSecurity(),
    ]) {
      const error = await call().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(SessionContainerMissingError);
      expect(SessionError.isInstance(error)).toBe(true);
      expect((error as Error).message).toContain(`the container of session ${session.id} (bulkhead-${session.id}) no longer exists`);
    }
    // What is left is still readable, and removable.
    expect(session.readWorkspaceFile("app", "src/index.ts").kind).toBe("file");
    await session.remove({ force: true });
  });
});

describe("project files", () => {
  it("refuses a project over the size limit before reading it, and parses a large one in linear time", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "app"));
    const head = `name: big\nrepos:\n  - name: app\n    path: app\nimage:\n  existing: ${image}\nenv:\n`;
    const keys = (count: number) => Array.from({ length: count }, (_, index) => `  K${index}: "${"v".repeat(20)}"\n`).join("");
    writeFileSync(join(dir.path, "huge.yaml"), head + keys(320_000));
    expect(statSync(join(dir.path, "huge.yaml")).size).toBeGreaterThan(10e6);
    expect(() => loadProject(join(dir.path, "huge.yaml"))).toThrow(`over the ${MAX_PROJECT_BYTES}-byte limit for a project config`);
    expect(() => defineProject(head + keys(320_000))).toThrow(`over the ${MAX_PROJECT_BYTES}-byte limit for a project config`);
    // About 1 MB in one map: yaml's own duplicate-key check made this quadratic.
    writeFileSync(join(dir.path, "large.yaml"), head + keys(32_000));
    expect(statSync(join(dir.path, "large.yaml")).size).toBeGreaterThan(1e6);
    expect(Object.keys(loadProject(join(dir.path, "large.yaml")).env)).toHaveLength(32_000);
    // Duplicate keys are still refused.
    writeFileSync(join(dir.path, "twice.yaml"), `${head}  A: "1"\n  A: "2"\n`);
    expect(() => loadProject(join(dir.path, "twice.yaml"))).toThrow('the key "A" is given twice in one map');
  });
});

import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { createTempDir, docker, git, initRepo, type TempDir, gitInWorkspace } from "@bulkhead/test-utils";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { checkDevices, containerSpec } from "./container-spec.js";
import { defineProject, loadProject, type Project } from "./project-config.js";
import { DeviceUnavailableError, InvalidProjectError, SessionError } from "./sandbox-errors.js";
import { AbortedError } from "@bulkhead/core";
import { createDockerBackend, createSession, getSession, listSessions, type Session } from "./index.js";

const run = promisify(execFile);
const image = inject("testImage");

describe("sandbox sessions on a real Docker engine", () => {
  let dir: TempDir;
  let home: string;
  let project: Project;
  let session: Session;

  beforeAll(async () => {
    dir = createTempDir();
    home = join(dir.path, "home");
    initRepo(join(dir.path, "backend-api"), { "src/index.ts": "export {};\n" });
    initRepo(join(dir.path, "shared-types"), { "index.d.ts": "export type Id = string;\n" });
    process.env.BULKHEAD_TEST_SECRET = "must-not-leak";
    process.env.BULKHEAD_TEST_PASSED = "named";
    project = defineProject({
      name: "rate-limit",
      repos: [
        { name: "backend-api", path: join(dir.path, "backend-api") },
        { name: "shared-types", path: join(dir.path, "shared-types"), mode: "mount-ro" },
      ],
      image: { existing: image },
      env: { EXPLICIT: "yes" },
      passEnv: ["BULKHEAD_TEST_PASSED"],
      agent: { command: ["/bin/sh", "-c", "echo agent start; echo 'export const rateLimit = 1;' > src/rateLimit.ts; echo agent done"] },
    });
    session = await createSession(project, { home });
  });
  afterAll(async () => {
    await session?.remove({ force: true }).catch(() => undefined);
    dir.remove();
  });

  it("creates a labelled container over clones on the session branch", async () => {
    const clone = join(session.state.workspace, "backend-api");
    expect(gitInWorkspace(clone, ["rev-parse", "--abbrev-ref", "HEAD"])).toBe(`bulkhead/${session.id}`);
    expect(session.state.repos.map((repo) => [repo.name, repo.mode, repo.baseSha])).toEqual([
      ["backend-api", "clone", git(join(dir.path, "backend-api"), ["rev-parse", "HEAD"])],
      ["shared-types", "mount-ro", git(join(dir.path, "shared-types"), ["rev-parse", "HEAD"])],
    ]);
    // The clone borrows the source's objects through alternates, never hard links: the source's
    // object files are not in the clone, and keep their owner.
    const head = git(join(dir.path, "backend-api"), ["rev-parse", "HEAD"]);
    const sourceObjects = join(dir.path, "backend-api", ".git", "objects");
    expect(existsSync(join(clone, ".git", "objects", head.slice(0, 2), head.slice(2)))).toBe(false);
    expect(readFileSync(join(clone, ".git", "objects", "info", "alternates"), "utf8").trim()).toBe(sourceObjects);
    expect(statSync(join(sourceObjects, head.slice(0, 2), head.slice(2))).uid).toBe(process.getuid!());
    const [uid] = session.state.user.split(":").map(Number);
    expect(statSync(join(clone, ".git", "objects")).uid).toBe(uid);
    expect(statSync(join(clone, "src", "index.ts")).uid).toBe(uid);
    const labels = JSON.parse(docker(["inspect", `bulkhead-${session.id}`]))[0].Config.Labels;
    expect(labels).toMatchObject({
      "dev.bulkhead.session": session.id,
      "dev.bulkhead.project": "rate-limit",
      "dev.bulkhead.config-hash": project.configHash,
      "dev.bulkhead.version": "0.1.0",
    });
    expect((await listSessions({ home })).map((entry) => [entry.id, entry.container])).toEqual([[session.id, "running"]]);
  });

  it("runs commands with exit codes, stdin, cwd and only the named environment", async () => {
    expect(await session.exec(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"])).toEqual({
      exitCode: 3,
      stdout: "out\n",
      stderr: "err\n",
      timedOut: false,
    });
    expect((await session.exec(["cat"], { stdin: "from stdin" })).stdout).toBe("from stdin");
    expect((await session.exec(["pwd"])).stdout).toBe("/workspace/backend-api\n");
    expect((await session.exec(["cat", "index.d.ts"], { cwd: "/workspace/shared-types" })).stdout).toBe("export type Id = string;\n");
    const env = (await session.exec(["env"])).stdout;
    expect(env).toContain("EXPLICIT=yes");
    expect(env).toContain("BULKHEAD_TEST_PASSED=named");
    expect(env).not.toContain("must-not-leak");
    // The exec inherits the session's user and environment from the container; per-call env adds to it.
    expect((await session.exec(["id", "-u"])).stdout).toBe(`${session.state.user.split(":")[0]}\n`);
    const withExtra = (await session.exec(["env"], { env: { PER_CALL: "1", EXPLICIT: "overridden" } })).stdout;
    expect(withExtra).toContain("PER_CALL=1");
    expect(withExtra).toContain("EXPLICIT=overridden");
    expect(withExtra).toContain("BULKHEAD_TEST_PASSED=named");
    const chunks: string[] = [];
    const stream = session.execStream(["/bin/sh", "-c", "echo one; echo two >&2"]);
    for await (const chunk of stream) chunks.push(`${chunk.stream}:${chunk.data.toString().trim()}`);
    expect(chunks.sort()).toEqual(["stderr:two", "stdout:one"]);
  });

  it("kills a command in the container on timeout or abort: a timeout says so, an abort throws AbortedError", async () => {
    const timed = await session.exec(["sleep", "30"], { timeoutMs: 300 });
    expect(timed).toMatchObject({ timedOut: true });
    expect(timed.exitCode).not.toBe(0);
    const controller = new AbortController();
    const reason = new Error("the caller gave up");
    setTimeout(() => controller.abort(reason), 200);
    const aborted = await session
      .exec(["/bin/sh", "-c", "sleep 30 & wait"], { abortSignal: controller.signal })
      .catch((error: unknown) => error);
    expect(aborted).toBeInstanceOf(AbortedError);
    expect((aborted as AbortedError).cause).toBe(reason);
    // The command and what it started were killed in the container, not only left behind.
    const left = await session.exec(["/bin/sh", "-c", "ps -o args | grep -c '[s]leep 30' || true"]);
    expect(left.stdout.trim()).toBe("0");
  });

  it("is hardened, and says so when read back", async () => {
    const probe = await session.exec([
      "/bin/sh",
      "-c",
      "id -u; grep CapEff /proc/self/status; ls /sys/class/net; touch /probe 2>&1 || echo root-read-only; ls /var/run/docker.sock 2>&1 || echo no-socket; mount -t tmpfs none /mnt 2>&1 || echo mount-denied; chown 0 /tmp 2>&1 || echo chown-denied",
    ]);
    const lines = probe.stdout.trim().split("\n");
    expect(lines[0]).not.toBe("0");
    expect(lines[1]).toMatch(/^CapEff:\s+0000000000000000$/);
    expect(lines[2]).toBe("lo");
    expect(probe.stdout).toContain("root-read-only");
    expect(probe.stdout).toContain("no-socket");
    expect(probe.stdout).toContain("mount-denied");
    expect(probe.stdout).toContain("chown-denied");
    expect(await session.inspectSecurity()).toMatchObject({
      capDrop: ["ALL"],
      securityOpt: ["no-new-privileges"],
      networkMode: "none",
      readonlyRootfs: true,
      privileged: false,
      pidsLimit: 256,
      memoryBytes: 1024 * 1024 * 1024,
      nanoCpus: 1e9,
      dockerSocketMounted: false,
    });
  });

  it("injects the agent as a detached job, logs it on the host, and finds it again", async () => {
    const job = await session.inject();
    expect(await job.wait()).toEqual({ exitCode: 0 });
    let log = "";
    for await (const chunk of job.logs()) log += chunk;
    expect(log).toBe("agent start\nagent done\n");
    expect(readFileSync(join(session.state.workspace, "backend-api/src/rateLimit.ts"), "utf8")).toBe("export const rateLimit = 1;\n");
    const again = getSession(session.id, { home });
    expect(again.jobs()).toEqual([expect.objectContaining({ id: job.id, exitCode: 0 })]);
    const follow = await again.inject({ command: ["/bin/sh", "-c", "echo a; sleep 0.3; echo b; exit 4"] });
    let followed = "";
    for await (const chunk of follow.logs({ follow: true })) followed += chunk;
    expect(followed).toBe("a\nb\n");
    expect(await again.job(follow.id).wait()).toEqual({ exitCode: 4 });
  });

  it("fetches the session branch into the source repo without touching its checkout", async () => {
    const clone = join(session.state.workspace, "backend-api");
    const source = join(dir.path, "backend-api");
    const before = git(source, ["rev-parse", "HEAD"]);
    // Written here, not borrowed from the inject test's agent, so this test runs alone (-t) too.
    writeFileSync(join(clone, "src/rateLimit.ts"), "export const rateLimit = 1;\n");
    gitInWorkspace(clone, ["add", "src/rateLimit.ts"]);
    gitInWorkspace(clone, ["commit", "--quiet", "-m", "Add rate limit"]);
    writeFileSync(join(clone, "scratch.txt"), "not committed\n");
    const [result] = await session.fetchCode({ strict: true });
    expect(result).toMatchObject({
      repo: "backend-api",
      status: "fetched",
      commits: 1,
      changedFiles: ["scratch.txt", "src/rateLimit.ts"],
      uncommitted: ["scratch.txt"],
      ref: `refs/bulkhead/${session.id}/${session.id}`,
    });
    // The change arrives as one commit on the base, written in the source from the workspace's bytes.
    expect(git(source, ["rev-parse", result!.ref!])).toBe(result!.commit);
    expect(git(source, ["rev-parse", `${result!.ref!}^`])).toBe(before);
    expect(git(source, ["show", `${result!.ref!}:scratch.txt`])).toBe("not committed");
    // Fetched again with nothing new: the same commit.
    expect((await session.fetchCode())[0]).toMatchObject({ status: "fetched", commit: result!.commit });
    expect(git(source, ["rev-parse", "HEAD"])).toBe(before);
    expect(git(source, ["status", "--porcelain"])).toBe("");
    expect(git(source, ["fsck", "--no-progress"])).toBe("");
    writeFileSync(join(clone, "scratch.txt"), "changed after the fetch\n");
    await expect(session.remove()).rejects.toThrow(
      "repo backend-api has changes that were not fetched: run fetchCode() first, or remove({ force: true })",
    );
  });

  it("gives parallel worktree jobs their own branch and working tree, and fetches each", async () => {
    const write = (name: string) => ["/bin/sh", "-c", `pwd; echo ${name} > src/${name}.ts; sleep 0.2`];
    const [first, second] = await Promise.all([
      session.inject({ command: write("first"), worktree: true }),
      session.inject({ command: write("second"), worktree: true }),
    ]);
    expect(await first.wait()).toEqual({ exitCode: 0 });
    expect(await second.wait()).toEqual({ exitCode: 0 });
    const records = session.jobs().filter((job) => job.worktree);
    expect(records).toHaveLength(2);
    for (const [job, name, other] of [
      [first, "first", "second"],
      [second, "second", "first"],
    ] as const) {
      const record = records.find((entry) => entry.id === job.id)!;
      let log = "";
      for await (const chunk of job.logs()) log += chunk;
      expect(log.trim()).toBe(`/workspace/${record.worktree!.path}/backend-api`);
      const tree = join(session.state.workspace, record.worktree!.path, "backend-api");
      expect(readFileSync(join(tree, `src/${name}.ts`), "utf8")).toBe(`${name}\n`);
      expect(existsSync(join(tree, `src/${other}.ts`))).toBe(false);
      expect(gitInWorkspace(tree, ["rev-parse", "--abbrev-ref", "HEAD"])).toBe(record.worktree!.branch);
      gitInWorkspace(tree, ["add", `src/${name}.ts`]);
      gitInWorkspace(tree, ["commit", "--quiet", "-m", `job ${name}`]);
    }
    const fetched = (await session.fetchCode()).filter((result) => result.branch.startsWith("bulkhead/jobs/"));
    // Job copies start from the session's base commit in the source repo, not from the agent's clone.
    expect(fetched.map((result) => [result.status, result.changedFiles]).sort()).toEqual([
      ["fetched", ["src/first.ts"]],
      ["fetched", ["src/second.ts"]],
    ]);
    for (const result of fetched) expect(git(join(dir.path, "backend-api"), ["rev-parse", result.ref!])).toBe(result.commit);
  });

  it("is found again by a new process after the controlling one died", async () => {
    const creator = new URL("../test/detached-creator.ts", import.meta.url).pathname;
    const { stdout: id } = await run(process.execPath, ["--import", "tsx", creator, home, join(dir.path, "backend-api"), image], {
      cwd: join(import.meta.dirname, ".."),
    });
    {
      // Looked up, so not this scope's to end: disposing it leaves the container running.
      await using looked = getSession(id, { home });
      expect(looked.ownsLifecycle).toBe(false);
    }
    const orphan = getSession(id, { home });
    expect((await orphan.backend.inspect(orphan.instance))?.state).toBe("running");
    expect((await orphan.exec(["echo", "alive"])).stdout).toBe("alive\n");
    expect(await orphan.stop()).toEqual({
      sessionId: id,
      container: "stopped",
      kept: { workspace: orphan.state.workspace, stateDir: join(home, "sessions", id) },
    });
    expect((await orphan.stop()).container).toBe("not-running");
    expect((await listSessions({ home, project: "detached" })).map((entry) => entry.container)).toEqual(["stopped"]);
    expect(await orphan.remove()).toEqual({
      sessionId: id,
      container: "removed",
      removedDir: join(home, "sessions", id),
      unregistered: false,
      kept: { refs: [] },
    });
    expect(existsSync(join(home, "sessions", id))).toBe(false);
    expect(await orphan.backend.inspect(orphan.instance)).toBeUndefined();
  });
});

describe("devices and bad configs", () => {
  it("passes a real device through", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "app"));
    const project = defineProject({
      name: "devices",
      repos: [{ name: "app", path: join(dir.path, "app") }],
      image: { existing: image },
      devices: {
        devices: [
          { hostPath: "/dev/zero", containerPath: "/dev/bulkhead-zero", permissions: "r" },
          { hostPath: "/dev/does-not-exist", required: false },
        ],
      },
    });
    const session = await createSession(project, { home: join(dir.path, "home") });
    try {
      expect((await session.exec(["/bin/sh", "-c", "head -c 4 /dev/bulkhead-zero | od -An -tx1"])).stdout.trim()).toBe("00 00 00 00");
      expect(session.state.granted).toEqual({ devices: ["/dev/zero"], gpus: false, skipped: ["/dev/does-not-exist"] });
    } finally {
      await session.remove({ force: true });
    }
  });

  it("refuses a missing required device or GPU runtime before creating anything, and sends GPU requests as asked", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "app"));
    const home = join(dir.path, "home");
    const base = { name: "gpu", repos: [{ name: "app", path: join(dir.path, "app") }], image: { existing: image } };
    await expect(createSession(defineProject({ ...base, devices: { devices: [{ hostPath: "/dev/nope" }] } }), { home })).rejects.toThrow(
      DeviceUnavailableError,
    );
    await expect(createSession(defineProject({ ...base, devices: { gpus: "all" } }), { home })).rejects.toThrow(
      "a GPU runtime is not available on this host",
    );
    expect(existsSync(join(home, "sessions"))).toBe(false);
    const project = defineProject({ ...base, devices: { gpus: ["GPU-0", "GPU-1"], gpuCapabilities: ["gpu", "compute"] } });
    expect(
      await checkDevices({ ...project, devices: { ...project.devices, gpuRequired: false } }, { backend: createDockerBackend() }),
    ).toEqual({
      devices: [],
      gpus: false,
      skipped: ["gpus"],
    });
    // The pre-check is bypassed here: no GPU on this machine, so the container is created, not started.
    const spec = containerSpec(project, {
      tag: image,
      sessionId: "gputest",
      workspace: dir.path,
      user: "1000:1000",
      granted: { devices: [], gpus: true, skipped: [] },
      env: {},
      version: "0.1.0",
    });
    const name = `bulkhead-gputest-${Date.now()}`;
    await createDockerBackend().create({ ...spec, name });
    const container = new Docker().getContainer(name);
    try {
      const info = await container.inspect();
      expect(info.HostConfig.DeviceRequests).toEqual([
        { Driver: "", Count: 0, DeviceIDs: ["GPU-0", "GPU-1"], Capabilities: [["gpu", "compute"]], Options: null },
      ]);
    } finally {
      await container.remove({ force: true });
    }
  });

  it("lists every config problem at once and leaves nothing behind when a step fails", async () => {
    await using dir = createTempDir();
    dir.write({ "plain/file.txt": "x" });
    initRepo(join(dir.path, "app"));
    try {
      defineProject({
        name: "Bad Name",
        repos: [
          { name: "app", path: join(dir.path, "missing") },
          { name: "plain", path: join(dir.path, "plain") },
        ],
        image: { existing: "x" },
        workdir: "nope",
      } as never);
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidProjectError);
      expect((error as InvalidProjectError).problems).toEqual(["name: expected a lower-case name of letters, digits, '.', '_' or '-'"]);
    }
    expect(() =>
      defineProject({
        name: "ok",
        repos: [
          { name: "app", path: join(dir.path, "missing") },
          { name: "plain", path: join(dir.path, "plain") },
        ],
        image: { existing: "x" },
        workdir: "nope",
        mounts: [{ host: "/var/run/docker.sock", container: "/sock" }],
      }),
    ).toThrow(
      [
        "invalid sandbox project:",
        `- repos.app: ${join(dir.path, "missing")} does not exist`,
        `- repos.plain: ${join(dir.path, "plain")} is not a git repository (no .git)`,
        '- workdir: "nope" is not one of the repos (app, plain)',
        "- mounts: the Docker socket is never mounted into a session (/var/run/docker.sock)",
      ].join("\n"),
    );
    const home = join(dir.path, "home");
    const project = defineProject({ name: "broken", repos: [{ name: "app", path: join(dir.path, "app") }], image: { existing: image } });
    const error = await createSession(project, { home, tag: "bulkhead-no-such-image:latest" }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SessionError);
    expect((error as SessionError).step).toBe("container");
    expect(existsSync(join(home, "sessions")) ? execFileSync("ls", [join(home, "sessions")], { encoding: "utf8" }) : "").toBe("");
    expect(docker(["ps", "-a", "--filter", "label=dev.bulkhead.project=broken", "--format", "{{.ID}}"])).toBe("");
    // Repos are cloned side by side: one failing clone names its repo, and the other is removed too.
    initRepo(join(dir.path, "other"));
    const badRef = defineProject({
      name: "broken",
      repos: [
        { name: "app", path: join(dir.path, "app") },
        { name: "other", path: join(dir.path, "other"), ref: "no-such-branch" },
      ],
      image: { existing: image },
    });
    const cloneError = await createSession(badRef, { home, tag: image }).catch((caught: unknown) => caught);
    expect(SessionError.isInstance(cloneError) && cloneError.step).toBe("clone other");
    expect(existsSync(join(home, "sessions")) ? execFileSync("ls", [join(home, "sessions")], { encoding: "utf8" }) : "").toBe("");
  });
});

describe("a job whose container goes away", () => {
  it("makes wait() fail with a SessionError and ends logs({ follow }) instead of waiting forever", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "app"));
    const project = defineProject({ name: "lost-job", repos: [{ name: "app", path: join(dir.path, "app") }], image: { existing: image } });
    await using session = await createSession(project, { home: join(dir.path, "home") });
    const job = await session.inject({ command: ["/bin/sh", "-c", "echo started; sleep 600"] });
    for (let attempt = 0; attempt < 100 && !(await job.logs().next()).value; attempt++)
      await new Promise((resolve) => setTimeout(resolve, 50));
    await session.stop();
    const error = await job.wait().catch((caught: unknown) => caught);
    expect(SessionError.isInstance(error) && error.step).toBe("job");
    expect((error as Error).message).toContain(`job ${job.id} ended without an exit code`);
    expect(session.jobs()).toEqual([expect.objectContaining({ id: job.id, lost: true })]);
    let output = "";
    for await (const chunk of job.logs({ follow: true })) output += chunk;
    expect(output).toBe("started\n");
  });
});

describe("a hostile agent", () => {
  it("cannot make the host run its git config, follow its links, or widen its isolation", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "app"), { "src/index.ts": "export {};\n" });
    const project = defineProject({ name: "hostile", repos: [{ name: "app", path: join(dir.path, "app") }], image: { existing: image } });
    await using session = await createSession(project, { home: join(dir.path, "home") });
    // Inside the container, the agent owns the clone's .git: it asks git to run commands, which
    // would leave marker files on the host if the host ran them.
    const marker = (name: string) => join(dir.path, `ran-${name}`);
    const setup = [
      "cd /workspace/app",
      `printf '[core]\\n\\tfsmonitor = touch ${marker("fsmonitor")}; false\\n[filter "evil"]\\n\\tclean = touch ${marker("clean")}; cat\\n\\tsmudge = touch ${marker("smudge")}; cat\\n' >> .git/config`,
      "echo '* filter=evil' > .gitattributes",
      `printf '#!/bin/sh\\ntouch ${marker("hook")}\\n' > .git/hooks/post-checkout && chmod +x .git/hooks/post-checkout`,
      "echo changed > src/index.ts",
    ].join(" && ");
    expect(await session.exec(["/bin/sh", "-c", setup])).toMatchObject({ exitCode: 0 });
    const [fetched] = await session.fetchCode();
    expect(fetched).toMatchObject({ status: "fetched", uncommitted: [".gitattributes", "src/index.ts"] });
    const worktreeJob = await session.inject({ command: ["/bin/sh", "-c", "true"], worktree: true });
    expect(await worktreeJob.wait()).toEqual({ exitCode: 0 });
    expect(["fsmonitor", "clean", "smudge", "hook"].filter((name) => existsSync(marker(name)))).toEqual([]);
    // The agent replaces the worktrees directory with a link to a host directory: no worktree is
    // made there, and nothing is written through the link.
    mkdirSync(join(dir.path, "escape"));
    expect(
      await session.exec([
        "/bin/sh",
        "-c",
        `rm -rf /workspace/.bulkhead/worktrees && ln -s ${join(dir.path, "escape")} /workspace/.bulkhead/worktrees`,
      ]),
    ).toMatchObject({ exitCode: 0 });
    await expect(session.inject({ command: ["true"], worktree: true })).rejects.toThrow("a worktree is never made through a link");
    expect(readdirSync(join(dir.path, "escape"))).toEqual([]);
    // A job that replaces its log with a link to a host file: the host does not follow it.
    const linked = await session.inject({
      id: "linked",
      command: ["/bin/sh", "-c", "rm -f /workspace/.bulkhead/jobs/linked.log; ln -s /etc/hostname /workspace/.bulkhead/jobs/linked.log"],
    });
    expect(await linked.wait()).toEqual({ exitCode: 0 });
    await expect(linked.logs().next()).rejects.toThrow("is a symbolic link: a job file is never read through a link");
    // Bad input is refused before anything runs.
    await expect(session.exec(["env"], { env: { "BAD NAME": "x" } })).rejects.toThrow('"BAD NAME" is not an environment variable name');
    await expect(session.exec(["pwd"], { cwd: "relative" })).rejects.toThrow("expected an absolute path inside the container");
    await expect(session.inject({ id: "linked", command: ["true"] })).rejects.toThrow('already has a job "linked"');
    // The state (the passEnv values in it) is readable by its owner only.
    expect(statSync(join(dir.path, "home", "sessions", session.id, "state.json")).mode & 0o777).toBe(0o600);
    // An exec into a stopped container fails as an error, not as an unhandled rejection.
    await session.stop();
    const stream = session.execStream(["true"]);
    await expect(stream.next()).rejects.toThrow();
    // The config refuses what would undo the isolation.
    const base = { name: "hostile", repos: [{ name: "app", path: join(dir.path, "app") }], image: { existing: image } };
    expect(() => defineProject({ ...base, network: "host" })).toThrow("would undo the session's network isolation");
    expect(() => defineProject({ ...base, network: "container:abc" })).toThrow("would undo the session's network isolation");
    expect(() => defineProject({ ...base, mounts: [{ host: "/run", container: "/host-run" }] })).toThrow(
      /the Docker socket is never mounted into a session \(\/run holds \/run\/docker\.sock\)/,
    );
  });
});

describe("fetching code back", () => {
  it("reports a diverged ref, and in strict mode fetches nothing at all", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "api"), { "src/index.ts": "export {};\n" });
    initRepo(join(dir.path, "web"), { "src/app.ts": "export {};\n" });
    // A YAML project file; its paths are relative to the file, and mount-ro repos cannot be written.
    initRepo(join(dir.path, "docs"), { "README.md": "# docs\n" });
    writeFileSync(
      join(dir.path, "bulkhead.yaml"),
      `name: fetch\nrepos:\n  - name: api\n    path: api\n  - name: web\n    path: web\n  - name: docs\n    path: docs\n    mode: mount-ro\nimage:\n  existing: ${image}\n`,
    );
    const project = loadProject(join(dir.path, "bulkhead.yaml"));
    expect(project.repos.map((repo) => [repo.name, repo.path, repo.mode])).toEqual([
      ["api", join(dir.path, "api"), "clone"],
      ["web", join(dir.path, "web"), "clone"],
      ["docs", join(dir.path, "docs"), "mount-ro"],
    ]);
    await using session = await createSession(project, { home: join(dir.path, "home") });
    expect((await session.exec(["/bin/sh", "-c", "echo x > /workspace/docs/README.md"])).exitCode).not.toBe(0);
    for (const repo of ["api", "web"]) {
      const clone = join(session.state.workspace, repo);
      writeFileSync(join(clone, "src", "new.ts"), "export const added = 1;\n");
      gitInWorkspace(clone, ["add", "src/new.ts"]);
      gitInWorkspace(clone, ["commit", "--quiet", "-m", `work in ${repo}`]);
    }
    // Someone already put a commit the session does not contain at web's ref.
    const web = join(dir.path, "web");
    git(web, ["checkout", "--quiet", "-b", "elsewhere"]);
    git(web, ["commit", "--quiet", "--allow-empty", "-m", "unrelated"]);
    const ref = `refs/bulkhead/${session.id}/${session.id}`;
    git(web, ["update-ref", ref, "HEAD"]);
    git(web, ["checkout", "--quiet", "main"]);
    await expect(session.fetchCode({ strict: true })).rejects.toThrow(/strict fetch failed for web \(diverged: .*\); nothing was fetched/);
    expect(() => git(join(dir.path, "api"), ["rev-parse", "--verify", "--quiet", ref])).toThrow();
    const results = await session.fetchCode();
    expect(results.map((result) => [result.repo, result.status])).toEqual([
      ["api", "fetched"],
      ["web", "diverged"],
    ]);
    expect(git(join(dir.path, "api"), ["rev-parse", ref])).toBe(results[0]!.commit);
  });
});

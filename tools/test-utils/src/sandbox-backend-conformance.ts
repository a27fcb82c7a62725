import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AbortedError, type SandboxBackend, type SandboxSpec } from "@bulkhead/core";
import { afterAll, describe, expect, it } from "vitest";
import { TEST_LABEL } from "./docker.js";
import { createTempDir, type TempDir } from "./fs.js";

/** What the suite needs of a backend under test. */
export interface SandboxBackendFixture {
  readonly backend: SandboxBackend;
  /** An image the backend can run that has `/bin/sh`, `sleep`, `cat`, `echo`, `env`, `pwd`. */
  readonly image: string;
}

/** The idle first process every session has: it ends at once on SIGTERM. */
const IDLE = ["/bin/sh", "-c", "echo first-process-up; trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"];

/** Polls `check` until it holds (bounded by attempts, never by wall-clock time in the assertion). */
async function eventually(check: () => boolean | Promise<boolean>, attempts = 500): Promise<boolean> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

/**
 * The conformance suite of {@link SandboxBackend}: the Docker backend (on the real engine) and
 * the test-only process backend run it and must behave the same: create, exec, inject (spawn),
 * stop, start, pause, remove, list, reconcile (list states and labels) and what `changes` needs
 * (the workspace mount is the host's directory; a pause freezes it).
 */
export function describeSandboxBackend(name: string, setup: () => SandboxBackendFixture | Promise<SandboxBackendFixture>): void {
  describe(`SandboxBackend conformance: ${name}`, () => {
    const run = randomBytes(4).toString("hex");
    const created: { backend: SandboxBackend; name: string }[] = [];
    const dirs: TempDir[] = [];
    afterAll(async () => {
      for (const entry of created) await entry.backend.remove(entry.name).catch(() => undefined);
      for (const dir of dirs) dir.remove();
    });

    /** A fresh instance (created, not started) over its own workspace directory. */
    const instance = async (label: string, change: Partial<SandboxSpec> = {}) => {
      const fixture = await setup();
      const dir = createTempDir("bulkhead-conformance-");
      dirs.push(dir);
      // The instance's user writes into it.
      chmodSync(dir.path, 0o777);
      const spec: SandboxSpec = {
        name: `bulkhead-conformance-${run}-${label}`,
        image: fixture.image,
        command: IDLE,
        user: "1000:1000",
        workdir: "/workspace",
        env: { CONFORMANCE: "yes" },
        labels: { [TEST_LABEL]: "1", "dev.bulkhead.conformance": run, "dev.bulkhead.conformance.case": label },
        mounts: [{ host: dir.path, container: "/workspace", readOnly: false }],
        tmpfs: { "/tmp": "rw,nosuid,nodev,size=16m,mode=1777" },
        network: "none",
        limits: { pids: 64, memoryBytes: 256 * 2 ** 20, cpus: 1 },
        readonlyRoot: true,
        devices: [],
        restartWithEngine: false,
        ...change,
      };
      await fixture.backend.create(spec);
      created.push({ backend: fixture.backend, name: spec.name });
      return { backend: fixture.backend, name: spec.name, workspace: dir.path, spec };
    };

    /** Runs a command and collects its output. */
    const collect = async (
      backend: SandboxBackend,
      target: string,
      command: string[],
      options: { stdin?: string; cwd?: string; env?: Record<string, string> } = {},
    ) => {
      const chunks: { stream: "stdout" | "stderr"; text: string }[] = [];
      const { exitCode } = await backend.exec(target, {
        command,
        ...options,
        onOutput: (stream, data) => chunks.push({ stream, text: data.toString("utf8") }),
      });
      const of = (stream: "stdout" | "stderr") =>
        chunks
          .filter((chunk) => chunk.stream === stream)
          .map((chunk) => chunk.text)
          .join("");
      return { exitCode, stdout: of("stdout"), stderr: of("stderr") };
    };

    it("create: an instance is created, not started, and found by its labels", async () => {
      const { backend, name: target, spec } = await instance("create");
      const info = await backend.inspect(target);
      expect(info).toMatchObject({ name: target, state: "created", labels: spec.labels });
      expect(
        (await backend.list({ labels: { "dev.bulkhead.conformance.case": "create", "dev.bulkhead.conformance": run } })).map(
          (entry) => entry.name,
        ),
      ).toEqual([target]);
      expect(await backend.list({ labels: { "dev.bulkhead.conformance": "another-run" } })).toEqual([]);
      // A name is the instance's: a second create under it is refused.
      await expect(backend.create(spec)).rejects.toThrow();
      expect(await backend.start(target)).toBe("started");
      expect((await backend.inspect(target))?.state).toBe("running");
      expect(await backend.start(target)).toBe("already-running");
      expect(await eventually(async () => (await backend.logs(target)).includes("first-process-up"))).toBe(true);
    });

    it("exec: exit code, output streamed per stream, stdin, cwd, environment and user", async () => {
      const { backend, name: target, workspace } = await instance("exec");
      await backend.start(target);
      expect(await collect(backend, target, ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"])).toEqual({
        exitCode: 3,
        stdout: "out\n",
        stderr: "err\n",
      });
      expect((await collect(backend, target, ["cat"], { stdin: "from stdin" })).stdout).toBe("from stdin");
      writeFileSync(join(workspace, "marker"), "");
      // The working directory is the spec's unless a command names one (judged by what it sees,
      // not by pwd: a backend may show its own path for the same directory).
      expect((await collect(backend, target, ["ls"])).stdout).toBe("marker\n");
      mkdirSync(join(workspace, "sub"));
      chmodSync(join(workspace, "sub"), 0o777);
      expect(await collect(backend, target, ["/bin/sh", "-c", "echo here > here.txt"], { cwd: "/workspace/sub" })).toMatchObject({
        exitCode: 0,
      });
      expect(readFileSync(join(workspace, "sub", "here.txt"), "utf8")).toBe("here\n");
      const env = (await collect(backend, target, ["env"], { env: { PER_CALL: "1" } })).stdout;
      expect(env).toContain("CONFORMANCE=yes");
      expect(env).toContain("PER_CALL=1");
      // Output arrives while the command runs, not only once it ended; onStart comes first.
      let seenBeforeEnd = false;
      const order: string[] = [];
      await backend.exec(target, {
        onStart: () => order.push("start"),
        command: ["/bin/sh", "-c", "echo early; while [ ! -e /workspace/go ]; do sleep 0.05; done; echo late"],
        onOutput: (_stream, data) => {
          order.push("output");
          if (data.toString().includes("early")) {
            seenBeforeEnd = true;
            writeFileSync(join(workspace, "go"), "");
          }
        },
      });
      expect(seenBeforeEnd).toBe(true);
      expect(order[0]).toBe("start");
      expect(order.filter((entry) => entry === "start")).toHaveLength(1);
      expect(await collect(backend, target, ["/bin/sh", "-c", "exit 0"])).toMatchObject({ exitCode: 0 });
    });

    it("exec: an abort stops the wait with AbortedError, before or during the command", async () => {
      const { backend, name: target, workspace } = await instance("abort");
      await backend.start(target);
      const reason = new Error("caller left");
      await expect(
        backend.exec(target, { command: ["touch", "/workspace/ran"], abortSignal: AbortSignal.abort(reason) }),
      ).rejects.toBeInstanceOf(AbortedError);
      expect(existsSync(join(workspace, "ran"))).toBe(false);
      const controller = new AbortController();
      const running = backend.exec(target, {
        command: ["/bin/sh", "-c", "echo started; sleep 30"],
        abortSignal: controller.signal,
        onOutput: () => controller.abort(reason),
      });
      const error = await running.catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(AbortedError);
      expect((error as AbortedError).cause).toBe(reason);
    });

    it("inject: a spawned command keeps running after the call and writes into the host's workspace", async () => {
      const { backend, name: target, workspace } = await instance("spawn");
      await backend.start(target);
      await backend.spawn(target, {
        command: ["/bin/sh", "-c", "sleep 0.2; echo $JOB_ENV > /workspace/spawned.txt"],
        env: { JOB_ENV: "from-job" },
        cwd: "/workspace",
      });
      // The call returned before the command finished.
      expect(existsSync(join(workspace, "spawned.txt"))).toBe(false);
      expect(
        await eventually(
          () => existsSync(join(workspace, "spawned.txt")) && readFileSync(join(workspace, "spawned.txt"), "utf8") === "from-job\n",
        ),
      ).toBe(true);
    });

    it("changes: the workspace is the host's directory, and a pause freezes it until unpause", async () => {
      const { backend, name: target, workspace } = await instance("pause");
      await backend.start(target);
      writeFileSync(join(workspace, "from-host.txt"), "host bytes");
      expect((await collect(backend, target, ["cat", "/workspace/from-host.txt"])).stdout).toBe("host bytes");
      await backend.spawn(target, {
        command: ["/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /workspace/tick; sleep 0.02; done"],
      });
      const tick = () => (existsSync(join(workspace, "tick")) ? readFileSync(join(workspace, "tick"), "utf8") : "");
      expect(await eventually(() => tick() !== "")).toBe(true);
      await backend.pause(target);
      expect((await backend.inspect(target))?.state).toBe("paused");
      const frozen = tick();
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(tick()).toBe(frozen);
      // A paused instance refuses new commands, and says why.
      const refused = await backend.exec(target, { command: ["true"] }).catch((caught: unknown) => caught);
      expect(backend.faultOf(refused)).toBe("paused");
      expect(await backend.unpause(target)).toBe("unpaused");
      expect(await backend.unpause(target)).toBe("not-paused");
      expect(await eventually(() => tick() !== frozen)).toBe(true);
      expect((await collect(backend, target, ["echo", "again"])).stdout).toBe("again\n");
    });

    it("stop and start: stop ends the processes and keeps the workspace; start runs the first process again", async () => {
      const { backend, name: target, workspace } = await instance("stop");
      await backend.start(target);
      const first = (await backend.inspect(target))!.startedAt;
      await collect(backend, target, ["/bin/sh", "-c", "echo kept > /workspace/kept.txt"]);
      expect(await backend.stop(target, { graceMs: 2000 })).toBe("stopped");
      expect((await backend.inspect(target))?.state).toBe("stopped");
      expect(await backend.stop(target)).toBe("not-running");
      expect(readFileSync(join(workspace, "kept.txt"), "utf8")).toBe("kept\n");
      // A stopped instance runs nothing.
      expect(
        await backend.exec(target, { command: ["true"] }).then(
          () => "ran",
          () => "refused",
        ),
      ).toBe("refused");
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await backend.start(target)).toBe("started");
      const info = (await backend.inspect(target))!;
      expect(info.state).toBe("running");
      expect(info.startedAt).not.toBe(first);
      expect((await collect(backend, target, ["cat", "/workspace/kept.txt"])).stdout).toBe("kept\n");
    });

    it("reconcile: list reports each instance's state by its labels, and inspect reads its settings back", async () => {
      const running = await instance("list-running");
      const stopped = await instance("list-stopped");
      await running.backend.start(running.name);
      const listed = await running.backend.list({ labels: { "dev.bulkhead.conformance": run, [TEST_LABEL]: true } });
      const states = Object.fromEntries(
        listed.filter((entry) => [running.name, stopped.name].includes(entry.name)).map((entry) => [entry.name, entry.state]),
      );
      expect(states).toEqual({ [running.name]: "running", [stopped.name]: "created" });
      const security = (await running.backend.inspect(running.name))!.security;
      expect(security.user).toBe("1000:1000");
      expect(security.binds).toContain(`${running.workspace}:/workspace:rw`);
      expect(security.privileged).toBe(false);
    });

    it("remove: the instance goes (its workspace stays on the host); calls on it then say it is missing", async () => {
      const { backend, name: target, workspace } = await instance("remove");
      await backend.start(target);
      expect(await backend.remove(target)).toBe("removed");
      expect(await backend.inspect(target)).toBeUndefined();
      expect(await backend.list({ labels: { "dev.bulkhead.conformance.case": "remove", "dev.bulkhead.conformance": run } })).toEqual([]);
      expect(await backend.remove(target)).toBe("missing");
      expect(await backend.stop(target)).toBe("missing");
      expect(existsSync(workspace)).toBe(true);
      const error = await backend.exec(target, { command: ["true"] }).catch((caught: unknown) => caught);
      expect(backend.faultOf(error)).toBe("missing");
      expect(backend.faultOf(new Error("something else"))).toBeUndefined();
    });
  });
}

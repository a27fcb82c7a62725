// A sandbox backend that runs every "instance" as plain host processes, for unit tests of the
// layers above the backend (Session, Job, changes, fetchCode) without a container engine.
//
// NOT A SECURITY BOUNDARY, and never exported from the package: the processes run on the host,
// see the whole host file system, keep the host's network, and drop no capability. Paths inside
// the "instance" are the spec's mounts, mapped by rewriting each argument, the working
// directory and the environment (a mount's container path at the start of a path becomes its
// host path); a command that builds such a path at run time is not mapped. A pause stops
// (SIGSTOP) the process groups the backend started; a process that left its group (setsid)
// is not paused. Processes run as the host user, whatever the spec's `user` says (a container's
// mounts need no search permission on the directories above them; a host process would).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Duplex } from "node:stream";
import {
  AbortedError,
  throwIfAborted,
  type SandboxBackend,
  type SandboxCommand,
  type SandboxFault,
  type SandboxInspection,
  type SandboxInstanceState,
  type SandboxSpec,
} from "@bulkhead/core";

/** An error of the process backend that the layers above act on. */
class ProcessBackendError extends Error {
  constructor(
    readonly fault: SandboxFault,
    message: string,
  ) {
    super(message);
    this.name = "ProcessBackendError";
  }
}

interface Instance {
  spec: SandboxSpec;
  state: SandboxInstanceState;
  startedAt: string;
  /** Where the instance's tmpfs paths live on the host. */
  scratch: string;
  main: ChildProcess | undefined;
  /** Every running process group the backend started (main, execs, spawns), by leader pid. */
  groups: Map<number, ChildProcess>;
  log: string;
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };

/**
 * Creates the process backend (tests only; see the note at the top of this file).
 *
 * @example
 * const backend = createProcessBackend();
 * const session = await createSession(project, { backend, tag: "none" });
 */
export function createProcessBackend({
  root = mkdtempSync(join(tmpdir(), "bulkhead-process-backend-")),
}: { root?: string } = {}): SandboxBackend & {
  /** Stops every instance's processes and deletes the scratch directories. */
  dispose(): Promise<void>;
} {
  const instances = new Map<string, Instance>();

  const find = (name: string): Instance => {
    const found = instances.get(name);
    if (!found) throw new ProcessBackendError("missing", `no such container: ${name}`);
    return found;
  };

  /** Container paths → host paths: the spec's mounts, and its tmpfs in the instance's scratch directory. */
  const mapper = (instance: Instance) => {
    const pairs = [
      ...instance.spec.mounts.filter((mount) => mount.host !== mount.container).map((mount) => [mount.container, mount.host] as const),
      ...Object.keys(instance.spec.tmpfs).map((path) => [path, join(instance.scratch, path)] as const),
    ].sort((left, right) => right[0].length - left[0].length);
    if (pairs.length === 0) return (text: string) => text;
    // One pass over the text, so a host path that was just put in is never mapped again.
    const pattern = new RegExp(`(?<![\\w./-])(${pairs.map(([container]) => escape(container)).join("|")})(?=$|[/\\s"';:])`, "g");
    const hostOf = new Map(pairs);
    return (text: string) => text.replace(pattern, (container) => hostOf.get(container)!);
  };

  const launch = (instance: Instance, options: SandboxCommand): ChildProcess => {
    const map = mapper(instance);
    const [file, ...args] = options.command.map(map);
    const env = Object.fromEntries(
      Object.entries({ PATH: process.env.PATH ?? "/usr/bin:/bin", ...instance.spec.env, ...options.env }).map(([key, value]) => [
        key,
        map(value),
      ]),
    );
    const child = spawn(file!, args, {
      cwd: map(options.cwd ?? instance.spec.workdir),
      env,
      // Its own process group, so stop and pause reach everything it starts.
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
    });
    if (child.pid !== undefined) {
      const pid = child.pid;
      instance.groups.set(pid, child);
      child.on("close", () => instance.groups.delete(pid));
    }
    return child;
  };

  const signalAll = (instance: Instance, signal: NodeJS.Signals) => {
    for (const pid of instance.groups.keys()) {
      try {
        process.kill(-pid, signal);
      } catch {
        // The group is gone already.
      }
    }
  };

  const runnable = (instance: Instance, name: string) => {
    if (instance.state === "paused")
      throw new ProcessBackendError("paused", `container ${name} is paused, unpause the container before exec`);
    if (instance.state !== "running") throw new Error(`container ${name} is not running`);
  };

  const stopInstance = async (instance: Instance, graceMs: number) => {
    if (instance.state === "paused") signalAll(instance, "SIGCONT");
    signalAll(instance, "SIGTERM");
    for (let waited = 0; instance.groups.size > 0 && waited < graceMs; waited += 20)
      await new Promise((resolve) => setTimeout(resolve, 20));
    signalAll(instance, "SIGKILL");
    for (let attempt = 0; instance.groups.size > 0 && attempt < 250; attempt++) await new Promise((resolve) => setTimeout(resolve, 20));
    instance.state = "stopped";
    instance.main = undefined;
  };

  return {
    name: "process",
    engine: `process://${root}`,

    faultOf: (error) => (error instanceof ProcessBackendError ? error.fault : undefined),

    async create(spec, { abortSignal } = {}) {
      throwIfAborted(abortSignal, "create");
      if (instances.has(spec.name)) throw new Error(`the name ${spec.name} is already in use`);
      const scratch = join(root, spec.name);
      for (const path of Object.keys(spec.tmpfs)) {
        mkdirSync(join(scratch, path), { recursive: true });
        chmodSync(join(scratch, path), 0o1777);
      }
      mkdirSync(scratch, { recursive: true });
      instances.set(spec.name, { spec, state: "created", startedAt: "", scratch, main: undefined, groups: new Map(), log: "" });
    },

    async start(name) {
      const instance = find(name);
      if (instance.state === "running" || instance.state === "paused") return "already-running";
      const main = launch(instance, { command: instance.spec.command });
      main.stdin?.end();
      main.stdout?.on("data", (data: Buffer) => (instance.log += data.toString("utf8")));
      main.stderr?.on("data", (data: Buffer) => (instance.log += data.toString("utf8")));
      main.on("close", () => {
        // The first process ended: the instance stopped, as a container does.
        if (instance.main === main) {
          instance.main = undefined;
          if (instance.state === "running") {
            signalAll(instance, "SIGKILL");
            instance.state = "stopped";
          }
        }
      });
      instance.main = main;
      instance.state = "running";
      instance.startedAt = new Date().toISOString();
      return "started";
    },

    async stop(name, { graceMs = 5000 } = {}) {
      const instance = instances.get(name);
      if (!instance) return "missing";
      if (instance.state !== "running" && instance.state !== "paused") return "not-running";
      await stopInstance(instance, graceMs);
      return "stopped";
    },

    async pause(name) {
      const instance = find(name);
      if (instance.state !== "running") throw new Error(`container ${name} is not running`);
      signalAll(instance, "SIGSTOP");
      instance.state = "paused";
    },

    async unpause(name) {
      const instance = find(name);
      if (instance.state !== "paused") return "not-paused";
      signalAll(instance, "SIGCONT");
      instance.state = "running";
      return "unpaused";
    },

    async remove(name) {
      const instance = instances.get(name);
      if (!instance) return "missing";
      await stopInstance(instance, 0);
      instances.delete(name);
      rmSync(instance.scratch, { recursive: true, force: true });
      return "removed";
    },

    async inspect(name): Promise<SandboxInspection | undefined> {
      const instance = instances.get(name);
      if (!instance) return undefined;
      const { spec } = instance;
      return {
        name,
        labels: spec.labels,
        state: instance.state,
        startedAt: instance.startedAt,
        // What really holds: host processes keep every capability and the host's network.
        security: {
          user: spec.user,
          capDrop: [],
          capAdd: [],
          securityOpt: [],
          networkMode: "host",
          readonlyRootfs: false,
          privileged: false,
          pidsLimit: 0,
          memoryBytes: 0,
          nanoCpus: 0,
          binds: spec.mounts.map((mount) => `${mount.host}:${mount.container}:${mount.readOnly ? "ro" : "rw"}`),
          devices: [],
          runtime: "process",
          env: Object.entries(spec.env).map(([key, value]) => `${key}=${value}`),
        },
      };
    },

    async list({ labels }) {
      return [...instances.values()]
        .filter(({ spec }) =>
          Object.entries(labels).every(([key, value]) => (value === true ? key in spec.labels : spec.labels[key] === value)),
        )
        .map(({ spec, state }) => ({ name: spec.name, labels: spec.labels, state }));
    },

    async exec(name, options) {
      throwIfAborted(options.abortSignal, "exec");
      const instance = find(name);
      runnable(instance, name);
      const child = launch(instance, options);
      options.onStart?.();
      child.stdout?.on("data", (data: Buffer) => options.onOutput?.("stdout", data));
      child.stderr?.on("data", (data: Buffer) => options.onOutput?.("stderr", data));
      child.stdin?.on("error", () => undefined);
      child.stdin?.end(options.stdin ?? "");
      let onAbort: (() => void) | undefined;
      try {
        return await new Promise<{ exitCode: number | null }>((resolve, reject) => {
          child.on("error", reject);
          child.on("close", (code, signal) => resolve({ exitCode: code ?? (signal ? 128 + (SIGNALS[signal] ?? 0) : null) }));
          onAbort = () => reject(new AbortedError("exec", options.abortSignal?.reason));
          options.abortSignal?.addEventListener("abort", onAbort, { once: true });
        });
      } finally {
        if (onAbort) options.abortSignal?.removeEventListener("abort", onAbort);
      }
    },

    async spawn(name, options) {
      const instance = find(name);
      runnable(instance, name);
      const child = launch(instance, options);
      child.stdin?.end();
      child.stdout?.resume();
      child.stderr?.resume();
    },

    async logs(name) {
      return find(name).log.trim();
    },

    async openTerminal(name, options) {
      const instance = find(name);
      runnable(instance, name);
      const child = launch(instance, options);
      const closed = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
      return {
        stream: Duplex.from({ readable: child.stdout!, writable: child.stdin! }),
        resize: async () => undefined,
        exitCode: () => closed,
      };
    },

    imageExists: async () => true,
    buildImage: async () => undefined,
    gpuRuntime: async () => false,

    async dispose() {
      for (const name of [...instances.keys()]) await this.remove(name);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

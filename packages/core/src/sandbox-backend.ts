import type { Duplex } from "node:stream";

/** A host directory or file made visible inside a sandbox instance. */
export interface SandboxMount {
  /** The absolute path on the host. */
  readonly host: string;
  /** The absolute path inside the instance. */
  readonly container: string;
  /** Mounted read-only. */
  readonly readOnly: boolean;
}

/** A device node passed through to an instance. */
export interface SandboxDevice {
  readonly hostPath: string;
  readonly containerPath: string;
  /** cgroup permissions: `r`, `w`, `m` in any combination. */
  readonly permissions: string;
}

/** GPUs asked of the engine. */
export interface SandboxGpuRequest {
  /** How many: -1 for all; 0 when `deviceIds` names them. */
  readonly count: number;
  readonly deviceIds?: readonly string[];
  readonly capabilities: readonly string[];
}

/**
 * What a sandbox instance is made of, engine-neutral: the sandbox package builds it from a
 * project, every backend turns it into its engine's request. A backend never loosens it: the
 * instance runs as `user`, with every capability dropped, no new privileges, never privileged,
 * and no engine socket; only what is asked here is added.
 */
export interface SandboxSpec {
  /** The instance's name on its engine, unique there (`bulkhead-<session id>`). */
  readonly name: string;
  /** The image (a tag the engine has; a backend without images may ignore it). */
  readonly image: string;
  /** The instance's first process: long-lived; work runs through {@link SandboxBackend.exec}. */
  readonly command: readonly string[];
  /** `uid:gid` the instance's processes run as. */
  readonly user: string;
  /** The working directory of the first process and of every exec that names none. */
  readonly workdir: string;
  /** The environment of the first process and of every exec. */
  readonly env: Readonly<Record<string, string>>;
  /** Labels, read back by {@link SandboxBackend.list}: how sessions are found again after a restart. */
  readonly labels: Readonly<Record<string, string>>;
  readonly mounts: readonly SandboxMount[];
  /** In-memory file systems: container path → mount options (`rw,nosuid,size=256m`). */
  readonly tmpfs: Readonly<Record<string, string>>;
  /** `none` (loopback only, no route, no DNS), `bridge`, or a named network. Never the host's. */
  readonly network: string;
  readonly limits: {
    /** The most processes the instance may hold at once. */
    readonly pids: number;
    readonly memoryBytes: number;
    /** CPUs, fractions allowed. */
    readonly cpus: number;
  };
  /** The image's file system is read-only (the mounts and tmpfs stay writable). */
  readonly readonlyRoot: boolean;
  readonly devices: readonly SandboxDevice[];
  readonly gpus?: SandboxGpuRequest | undefined;
  /** An engine runtime (`runsc`, `nvidia`). @default the engine's default */
  readonly runtime?: string | undefined;
  /** Started again when the engine restarts, unless it was stopped on purpose. */
  readonly restartWithEngine: boolean;
}

/** Where an instance is in its life. */
export type SandboxInstanceState = "created" | "running" | "paused" | "stopped";

/** An instance as {@link SandboxBackend.list} finds it. */
export interface SandboxInstance {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly state: SandboxInstanceState;
}

/** The settings an instance really runs with, read back from its engine (not from the spec sent). */
export interface SandboxSecurity {
  readonly user: string;
  readonly capDrop: readonly string[];
  readonly capAdd: readonly string[];
  readonly securityOpt: readonly string[];
  readonly networkMode: string;
  readonly readonlyRootfs: boolean;
  readonly privileged: boolean;
  readonly pidsLimit: number;
  readonly memoryBytes: number;
  readonly nanoCpus: number;
  /** `host:container[:ro|rw]`, as Docker writes binds. */
  readonly binds: readonly string[];
  /** Container paths of the passed-through devices. */
  readonly devices: readonly string[];
  readonly runtime: string;
  readonly env: readonly string[];
}

/** An instance as {@link SandboxBackend.inspect} reads it. */
export interface SandboxInspection extends SandboxInstance {
  /** When its first process last started (ISO time; empty before the first start): a new value means it restarted. */
  readonly startedAt: string;
  readonly security: SandboxSecurity;
}

/** A command for {@link SandboxBackend.exec} and {@link SandboxBackend.spawn}. */
export interface SandboxCommand {
  /** The argument list; nothing is parsed by a shell unless the command is one. */
  readonly command: readonly string[];
  /** Added to the instance's environment for this command. @default {} */
  readonly env?: Readonly<Record<string, string>> | undefined;
  /** An absolute path inside the instance. @default the spec's `workdir` */
  readonly cwd?: string | undefined;
  /** `uid:gid`. @default the spec's `user` */
  readonly user?: string | undefined;
}

/** Options of {@link SandboxBackend.exec}. */
export interface SandboxExecOptions extends SandboxCommand {
  /** Written to the command's stdin, which is then closed. @default no stdin (end of file at once) */
  readonly stdin?: string | Buffer | undefined;
  /** Called with each piece of output as it arrives, in order per stream. @default output is dropped */
  readonly onOutput?: ((stream: "stdout" | "stderr", data: Buffer) => void) | undefined;
  /** Called once, when the command has started (before any output). @default nothing is called */
  readonly onStart?: (() => void) | undefined;
  /**
   * Stops waiting: the call throws `AbortedError`. The process itself is not signalled (an engine
   * cannot signal an exec's process): a caller that must stop it does so through its process
   * group, as the sandbox's `Session` does.
   * @default no signal
   */
  readonly abortSignal?: AbortSignal | undefined;
}

/** An interactive command on a terminal (a person's shell). */
export interface SandboxTerminal {
  /** Keys in, screen out. */
  readonly stream: Duplex;
  resize(columns: number, rows: number): Promise<void>;
  /** The exit code, once `stream` has ended. */
  exitCode(): Promise<number | null>;
}

/** What an image build needs. */
export interface SandboxImageBuild {
  /** A directory on the host holding every file the build may see. */
  readonly context: string;
  /** The Dockerfile's name inside `context`. */
  readonly dockerfile: string;
  readonly tag: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Each line of the build's output. @default dropped */
  readonly onProgress?: ((line: string) => void) | undefined;
  /** @default no signal */
  readonly abortSignal?: AbortSignal | undefined;
}

/**
 * Why a backend call failed, when the layers above act on it: the instance does not exist
 * (`missing`), it is paused and refuses the call (`paused`), or the engine does not answer.
 */
export type SandboxFault = "missing" | "paused" | "engine-unavailable";

/**
 * A place that runs sandbox instances: the Docker engine on this host today, remote engines and
 * Kubernetes later. Engine-neutral: nothing in it names an engine's own types. The sandbox
 * package builds sessions on it (workspace, jobs, change sets); a backend only creates, runs and
 * reports instances. Every backend passes the conformance suite in tools/test-utils
 * (`describeSandboxBackend`). The workspace is a host directory mounted into the instance: the
 * host reads changes from it directly (with the instance paused), so no copy-out is needed.
 *
 * Lifecycle calls are idempotent and say what they found. Errors an engine raises are thrown as
 * they are; {@link faultOf} tells the ones the layers above handle.
 */
export interface SandboxBackend {
  /** A short name: `docker`, `process`. */
  readonly name: string;
  /** Where instances run, as a session registry records it: `docker://unix:///var/run/docker.sock`. */
  readonly engine: string;
  /** Creates an instance (not started). Refused when the name is taken. */
  create(spec: SandboxSpec, options?: { readonly abortSignal?: AbortSignal | undefined }): Promise<void>;
  /** Starts a created or stopped instance. */
  start(name: string): Promise<"started" | "already-running">;
  /** Stops the instance's processes (SIGTERM, then SIGKILL after `graceMs`); its mounts stay. */
  stop(name: string, options?: { readonly graceMs?: number | undefined }): Promise<"stopped" | "not-running" | "missing">;
  /** Freezes every process of a running instance: nothing in it changes until {@link unpause}. */
  pause(name: string): Promise<void>;
  unpause(name: string): Promise<"unpaused" | "not-paused">;
  /** Removes the instance, stopping it first; mounts' host sides are never touched. */
  remove(name: string): Promise<"removed" | "missing">;
  /** The instance as it is now, or undefined when it does not exist. */
  inspect(name: string): Promise<SandboxInspection | undefined>;
  /** Every instance carrying all of `labels` (`true`: the label is present, any value). */
  list(options: { readonly labels: Readonly<Record<string, string | true>> }): Promise<SandboxInstance[]>;
  /** Runs a command to completion; output streams to `onOutput`. */
  exec(name: string, options: SandboxExecOptions): Promise<{ exitCode: number | null }>;
  /** Starts a command without waiting for it (it keeps running after this returns). */
  spawn(name: string, options: SandboxCommand): Promise<void>;
  /** The first process's output so far (the last part of it), as text. */
  logs(name: string): Promise<string>;
  /** Starts an interactive command on a terminal. */
  openTerminal(name: string, options: SandboxCommand): Promise<SandboxTerminal>;
  imageExists(tag: string): Promise<boolean>;
  buildImage(build: SandboxImageBuild): Promise<void>;
  /** Whether GPU requests can be served (an nvidia runtime, CDI specs). */
  gpuRuntime(): Promise<boolean>;
  /** The fault an error of this backend means, or undefined for any other failure. */
  faultOf(error: unknown): SandboxFault | undefined;
}

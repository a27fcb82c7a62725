import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import {
  AbortedError,
  type ChangeSet,
  createDeadline,
  InvalidArgumentError,
  normalizeRepoPath,
  PathOutsideRootError,
  type SandboxBackend,
  type SandboxSecurity,
  sleep,
  throwIfAborted,
  validateOptions,
} from "@bulkhead/core";
import { z } from "zod";
import { diskUsage } from "./disk-usage.js";
import { findEngineSocket } from "./engine-socket.js";
import { Job } from "./job.js";
import { addJobWorktrees } from "./job-worktrees.js";
import { pauseHolders, recoverStalePause } from "./pause-session.js";
import { readInside } from "./read-inside.js";
import { DiskLimitError, SessionError, SessionPausedError, WorkspaceFileTooLargeError, sessionFault } from "./sandbox-errors.js";
import { sessionDir, updateSessionState, type JobRecord, type SessionState } from "./session-state-store.js";
import { readSessionChanges, type ChangesOptions } from "./session-changes.js";
import { assertAllFetched, fetchSessionCode, sessionUncommitted, type FetchCodeOptions, type FetchResult } from "./workspace-inspection.js";
import { unregisterSession, type SessionRegistration } from "./session-registration.js";
import { git } from "./git.js";

/** How a command in the session ended. An abort through `abortSignal` throws `AbortedError` instead. */
export interface ExecResult {
  /** The command's exit code; null when the engine reports none. A killed command has 137 or 143. */
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** The command ran past `timeoutMs` and was killed. */
  timedOut: boolean;
}

/** Options of `session.exec()` and `session.execStream()`. */
export interface ExecOptions {
  /** Added to the session's environment for this command. @default {} */
  readonly env?: Readonly<Record<string, string>>;
  /** An absolute path inside the container. @default the session's working directory */
  readonly cwd?: string;
  /** Written to the command's stdin, which is then closed. @default no stdin */
  readonly stdin?: string;
  /**
   * Kills the command (and every process it started) after this many milliseconds; the result
   * then says `timedOut: true`. @default no time limit
   */
  readonly timeoutMs?: number;
  /**
   * Kills the command (and every process it started) and throws `AbortedError` once it has
   * ended. @default no signal
   */
  readonly abortSignal?: AbortSignal;
}

/** Options of `session.inject()`. */
export interface InjectOptions {
  /** The job's command. @default the project's agent command */
  readonly command?: readonly string[];
  /** Added to the session's and the agent's environment. @default {} */
  readonly env?: Readonly<Record<string, string>>;
  /** The job's id, unique in the session. @default generated (`j-<time>-<random>`) */
  readonly id?: string;
  /**
   * Runs the job in its own copy of every cloned repo, on its own branch
   * (`bulkhead/jobs/<session>/<job>`), so parallel jobs never share a working tree. @default false
   */
  readonly worktree?: boolean;
  /** Checked before each step of starting the job; a started job is stopped with `job.kill()`. @default no signal */
  readonly abortSignal?: AbortSignal;
}

/** What `session.stop()` did, and what it kept. */
export interface StopReport {
  readonly sessionId: string;
  /** `missing`: the container was removed outside bulkhead (its workspace is still kept). */
  readonly container: "stopped" | "not-running" | "missing";
  /** Kept on the host: the workspace and the state directory; `session.start()` resumes over them. */
  readonly kept: { readonly workspace: string; readonly stateDir: string };
}

/** What `session.remove()` removed, and what it kept. */
export interface RemoveReport {
  readonly sessionId: string;
  /** `missing`: there was no container any more. */
  readonly container: "removed" | "missing";
  /** The session's directory (state and workspace), now deleted. */
  readonly removedDir: string;
  /** Whether the session was forgotten in the team's registry (`registration` given). */
  readonly unregistered: boolean;
  /** Kept in the source repositories: the refs `fetchCode` wrote for this session. */
  readonly kept: { readonly refs: readonly { readonly repo: string; readonly ref: string; readonly commit: string }[] };
}

/** What `session.inspectSecurity()` reads back. */
export interface SecurityReport extends SandboxSecurity {
  /** Whether an engine socket is among the mounts, judged by identity (device and inode). */
  readonly dockerSocketMounted: boolean;
}

/** How a `Session` object is made: by `createSession` (it owns the lifecycle) or `getSession` (it does not). */
export interface SessionOptions {
  readonly state: SessionState;
  readonly backend: SandboxBackend;
  readonly home: string;
  /** Whether disposing this object stops the session. */
  readonly ownsLifecycle: boolean;
}

/** What `Job` and the package's helpers need of a session, kept out of its public API. */
export interface SessionInternals {
  updateState(change: (state: SessionState) => void): Promise<void>;
  stopProcess(pidFile: string, graceMs: number): Promise<void>;
  watchDisk(): () => void;
}

const internals = new WeakMap<Session, SessionInternals>();

/** The package-internal side of a session (not exported from the package). */
export function internalsOf(session: Session): SessionInternals {
  const found = internals.get(session);
  if (!found) throw new InvalidArgumentError("session", "expected a Session made by createSession or getSession");
  return found;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Environment names a shell accepts, and string values: anything else is refused up front. */
const envSchema = () =>
  z.record(z.string(), z.unknown()).superRefine((env, context) => {
    for (const [key, value] of Object.entries(env)) {
      if (!ENV_NAME.test(key)) context.addIssue({ code: "custom", message: `"${key}" is not an environment variable name` });
      else if (typeof value !== "string") context.addIssue({ code: "custom", message: `${key} must be a string, got ${typeof value}` });
    }
  }) as unknown as z.ZodType<Record<string, string>>;

const execOptionsSchema = () =>
  z.strictObject({
    env: envSchema().optional(),
    cwd: z.string().regex(/^\//, "expected an absolute path inside the container").optional(),
    stdin: z.string().optional(),
    timeoutMs: z.number().int().positive().optional(),
    abortSignal: z.instanceof(AbortSignal).optional(),
  });

const commandSchema = () => z.array(z.string()).min(1, "expected an argument list of strings");

const injectOptionsSchema = () =>
  z.strictObject({
    command: commandSchema().optional(),
    env: envSchema().optional(),
    id: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "is not a usable job id")
      .optional(),
    worktree: z.boolean().optional(),
    abortSignal: z.instanceof(AbortSignal).optional(),
  });

const removeOptionsSchema = () =>
  z.strictObject({
    force: z.boolean().optional(),
    registration: z.custom<SessionRegistration>((value) => typeof value === "object" && value !== null).optional(),
  });

/** What `readWorkspaceFile` reads at most unless told otherwise: 64 MiB. */
export const MAX_WORKSPACE_FILE_BYTES = 64 * 2 ** 20;
/**
 * Runs the command as the leader of its own process group (`setsid`, when the image has it), so
 * a timeout, an abort or `job.kill()` can stop it with every process it started. Its pid goes to
 * the file named by `$0` first. A background command's stdin would be /dev/null: fd 3 keeps the
 * exec's own stdin for it.
 */
const GROUP_LEADER =
  'p=$0; exec 3<&0; if command -v setsid >/dev/null 2>&1; then setsid "$@" <&3 3<&- & else "$@" <&3 3<&- & fi; ' +
  'echo $! > "$p"; wait $!; s=$?; rm -f "$p"; exit $s';

/**
 * Signals a process group from inside the container, with shell builtins only (`read`, `kill`):
 * no fork is needed, so it works while a fork bomb holds every pid the session may have. The
 * group's leader pid is in the file `$1`; a number is all it may hold (the container wrote it).
 * `kill -s SIG -PID` is busybox's form; dash (Debian's sh) reads `-PID` as an option and needs
 * `kill -s SIG -- -PID`, which busybox refuses: each is tried, then the leader alone.
 */
const SIGNAL_GROUP =
  'read -r pid < "$1" 2>/dev/null || { echo gone; exit 0; }; case "$pid" in ""|*[!0-9]*) echo gone; exit 0;; esac; ' +
  'group() { kill "$@" "-$pid" 2>/dev/null || kill "$@" -- "-$pid" 2>/dev/null || kill "$@" "$pid" 2>/dev/null; }; ' +
  'if [ "$2" = probe ]; then group -0 || echo gone; echo done; exit 0; fi; ' +
  'i=0; while [ $i -lt 20 ]; do group -s "$2" || break; ' +
  '[ "$2" = KILL ] || break; i=$((i+1)); done; echo done';

/**
 * A started container session over a multi-repo workspace (seed 002), on a {@link SandboxBackend}
 * (Docker by default). Made by `createSession` (which owns it: disposing it stops it) or found
 * again by `getSession` (which does not: disposing a looked-up session leaves it running).
 */
export class Session implements AsyncDisposable {
  #state: SessionState;
  /** Worktrees are added one at a time: git locks the repository's config while adding one. */
  #worktreesAdded: Promise<unknown> = Promise.resolve();
  /** Pid files of this object's running execs that can be stopped (see {@link GROUP_LEADER}). */
  #runningExecs = new Set<string>();
  /** Callers that watch the disk limit now (execs, waits, follows), and the timer while any do. */
  #diskWatchers = 0;
  #diskTimer: NodeJS.Timeout | undefined;
  #diskChecking = false;
  /** Where the session's container runs. */
  readonly backend: SandboxBackend;
  /** The state directory the session lives under. */
  readonly home: string;
  /**
   * True for a session made by `createSession`: `[Symbol.asyncDispose]` stops it. False for one
   * found by `getSession` (or `listSessions`): its creator decides when it ends.
   */
  readonly ownsLifecycle: boolean;

  /** @internal made by createSession and getSession */
  constructor({ state, backend, home, ownsLifecycle }: SessionOptions) {
    this.#state = state;
    this.backend = backend;
    this.home = home;
    this.ownsLifecycle = ownsLifecycle;
    internals.set(this, {
      updateState: (change) => this.#updateState(change),
      stopProcess: (pidFile, graceMs) => this.#stopProcess(pidFile, graceMs),
      watchDisk: () => this.#watchDisk(),
    });
  }

  get id(): string {
    return this.#state.id;
  }

  get state(): SessionState {
    return this.#state;
  }

  /** The backend's name for the session's container: `bulkhead-<id>`. */
  get instance(): string {
    return `bulkhead-${this.id}`;
  }

  /** Rethrows a backend error as the typed session error it means (see {@link sessionFault}). */
  #fault(step: string): (error: unknown) => never {
    return (error) => {
      throw sessionFault(error, step, this.id, this.backend.faultOf(error));
    };
  }

  /** Changes the state file under a lock, so several processes can record jobs. */
  async #updateState(change: (state: SessionState) => void): Promise<void> {
    this.#state = await updateSessionState(this.home, this.id, change);
  }

  /**
   * Runs a command to completion. `timeoutMs` kills it (and what it started) inside the
   * container and says so (`timedOut`); `abortSignal` kills it and throws `AbortedError`.
   *
   * @example
   * const { exitCode, stdout } = await session.exec(["git", "status"], { timeoutMs: 10_000 });
   */
  async exec(command: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    return this.#collect(command, validateOptions(execOptionsSchema(), options, "options"));
  }

  async #collect(command: readonly string[], options: ExecOptions & { plain?: boolean }): Promise<ExecResult> {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const result = await this.#run(command, options, (stream, data) => (stream === "stdout" ? out : err).push(data));
    return { ...result, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") };
  }

  /** Runs a command and yields its output as demultiplexed chunks as they arrive. Options as {@link exec}. */
  async *execStream(
    command: readonly string[],
    options: ExecOptions = {},
  ): AsyncGenerator<{ stream: "stdout" | "stderr"; data: Buffer }, Omit<ExecResult, "stdout" | "stderr">> {
    const checked = validateOptions(execOptionsSchema(), options, "options");
    const queue: { stream: "stdout" | "stderr"; data: Buffer }[] = [];
    let wake: (() => void) | undefined;
    let finished: Omit<ExecResult, "stdout" | "stderr"> | undefined;
    let failed: { error: unknown } | undefined;
    const done = this.#run(command, checked, (stream, data) => {
      queue.push({ stream, data });
      wake?.();
    }).then(
      (result) => {
        finished = result;
        wake?.();
      },
      // A failed exec (the container stopped) ends the stream with its error, never unhandled.
      (error: unknown) => {
        failed = { error };
        wake?.();
      },
    );
    for (;;) {
      while (queue.length > 0) yield queue.shift()!;
      if (failed) throw failed.error;
      if (finished) return finished;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      await Promise.race([done, Promise.resolve()]);
    }
  }

  async #run(
    command: readonly string[],
    { env = {}, cwd, stdin, timeoutMs, abortSignal, plain = false }: ExecOptions & { plain?: boolean },
    onData: (stream: "stdout" | "stderr", data: Buffer) => void,
  ): Promise<Omit<ExecResult, "stdout" | "stderr">> {
    if (!Array.isArray(command) || command.length === 0 || !command.every((part) => typeof part === "string"))
      throw new InvalidArgumentError("command", "expected an argument list of strings");
    throwIfAborted(abortSignal, "exec");
    const pidFile = `/tmp/.bulkhead-exec-${randomBytes(6).toString("hex")}`;
    // Only a command that may be killed (a timeout, an abort, a disk limit to keep) runs as the
    // leader of its own process group, under a shell that records its pid first.
    // `plain`: bulkhead's own signaller, which must not need a second pid (see SIGNAL_GROUP).
    const killable = !plain && (timeoutMs !== undefined || abortSignal !== undefined || this.#state.diskLimitBytes !== undefined);
    using deadline = createDeadline({ abortSignal, timeoutMs });
    let ended = false;
    let killed: Promise<void> | undefined;
    // The command may not have recorded its pid yet (it can print before its shell writes the
    // file): the group is signalled again until the exec has ended.
    const killUntilEnded = async () => {
      while (!ended) {
        await this.#stopProcess(pidFile, 1000).catch(() => undefined);
        if (!ended) await sleep(50);
      }
    };
    const kill = () => void (killed = killUntilEnded());
    deadline.signal.addEventListener("abort", kill, { once: true });
    // As on main: the exec is stoppable by the disk limit, and watches it, once it has started
    // (a command that frees space is not killed by a check that ran before it could).
    let release: (() => void) | undefined;
    const started = () => {
      if (release) return;
      if (killable) this.#runningExecs.add(pidFile);
      release = plain ? () => undefined : this.#watchDisk();
    };
    let exitCode: number | null;
    try {
      ({ exitCode } = await this.#unlessPaused("exec", () =>
        // The container was created with the session's user, environment and working directory,
        // and an exec inherits them: only what this call changes is sent.
        this.backend.exec(this.instance, {
          command: killable ? ["/bin/sh", "-c", GROUP_LEADER, pidFile, ...command] : [...command],
          env,
          cwd,
          stdin,
          onOutput: onData,
          onStart: started,
        }),
      ));
    } finally {
      ended = true;
      deadline.signal.removeEventListener("abort", kill);
      this.#runningExecs.delete(pidFile);
      release?.();
    }
    // Once the call returns or throws, the killed command's group is gone, not only its leader.
    await killed;
    // The command was killed and has ended: an abort ends the same way everywhere.
    if (abortSignal?.aborted && !deadline.timedOut) throw new AbortedError("exec", abortSignal.reason);
    return { exitCode, timedOut: deadline.timedOut };
  }

  /**
   * Starts a detached job (the agent by default); its output goes to a log file on the host.
   *
   * @example
   * const job = await session.inject({ env: { BULKHEAD_PROMPT: prompt }, worktree: true });
   * const { exitCode } = await job.wait();
   */
  async inject(options: InjectOptions = {}): Promise<Job> {
    const { env, worktree = false, abortSignal, ...rest } = validateOptions(injectOptionsSchema(), options, "options");
    throwIfAborted(abortSignal, "inject");
    const command = rest.command ?? this.#state.agent?.command;
    if (!command || command.length === 0) throw new InvalidArgumentError("options.command", "the project has no agent command: pass one");
    const id = rest.id ?? `j-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;
    // A reused id would find the earlier job's exit file and log.
    if (this.#state.jobs.some((existing) => existing.id === id))
      throw new InvalidArgumentError("options.id", `session ${this.id} already has a job "${id}": give each job its own id`);
    // No new work in a workspace that is over its disk limit.
    if (this.#state.diskLimitBytes !== undefined) await this.assertWithinDisk();
    const jobs = "/workspace/.bulkhead/jobs";
    let workdir = this.#state.workdir;
    let record: JobRecord["worktree"];
    if (worktree) {
      // Not under bulkhead/<session>: that branch exists, and git cannot nest a branch inside another.
      const branch = `bulkhead/jobs/${this.id}/${id}`;
      record = { branch, path: `.bulkhead/worktrees/${id}` };
      const added = this.#worktreesAdded.then(() => addJobWorktrees(this, { branch, path: `.bulkhead/worktrees/${id}` }));
      this.#worktreesAdded = added.catch(() => undefined);
      await added;
      workdir = `/workspace/${record.path}/${workdir.slice("/workspace/".length)}`;
    }
    throwIfAborted(abortSignal, "inject");
    await this.#unlessPaused("inject", () =>
      this.backend.spawn(this.instance, {
        command: [
          "/bin/sh",
          "-c",
          // The command runs in the background, as the leader of its own process group, so that
          // job.kill() can stop it and everything it started (its pid is recorded for that).
          'log=$1; ex=$2; shift 2; if command -v setsid >/dev/null 2>&1; then set -- setsid "$@"; fi; ' +
            '"$@" > "$log" 2>&1 & echo $! > "$ex.pid"; wait $!; echo $? > "$ex.tmp" && mv "$ex.tmp" "$ex"',
          "job",
          `${jobs}/${id}.log`,
          `${jobs}/${id}.exit`,
          ...command,
        ],
        env: { ...this.#state.env, ...this.#state.agent?.env, ...env },
        cwd: workdir,
        user: this.#state.user,
      }),
    );
    const containerStartedAt = await this.backend.inspect(this.instance).then((info) => {
      if (!info) throw sessionFault(new Error("no such container"), "inject", this.id, "missing");
      return info.startedAt;
    }, this.#fault("inject"));
    await this.#updateState((state) =>
      state.jobs.push({
        id,
        command: [...command],
        startedAt: new Date().toISOString(),
        containerStartedAt,
        ...(record ? { worktree: record } : {}),
      }),
    );
    return new Job(this, id);
  }

  /**
   * Stops the process group whose leader's pid a file in the container holds: SIGTERM to the
   * group, then, if any of it is left after `graceMs` (at once when it is 0), SIGKILL (repeated
   * until nothing of the group is left, so a fork bomb goes too). Used for an exec's timeout or
   * abort and by `job.kill()`.
   */
  async #stopProcess(pidFile: string, graceMs: number): Promise<void> {
    if (graceMs <= 0) {
      await this.#signalGroup(pidFile, "KILL");
      return;
    }
    if ((await this.#signalGroup(pidFile, "TERM")) === "gone") return;
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline) {
      await sleep(Math.min(100, Math.max(0, deadline - Date.now())));
      if ((await this.#signalGroup(pidFile, "probe")) === "gone") return;
    }
    await this.#signalGroup(pidFile, "KILL");
  }

  /**
   * Runs {@link SIGNAL_GROUP} in the container. Under a fork bomb the exec itself may fail to
   * start (no pid left in the session's limit): it is tried again until it answers.
   */
  async #signalGroup(pidFile: string, signal: "TERM" | "KILL" | "probe"): Promise<"gone" | "done"> {
    for (let attempt = 0; ; attempt++) {
      const result = await this.#collect(["/bin/sh", "-c", SIGNAL_GROUP, "signal", pidFile, signal], { plain: true }).catch(
        (error: unknown) => {
          if (SessionError.isInstance(error) && error.data.fault !== undefined && error.data.fault !== "container-paused") throw error;
          return undefined;
        },
      );
      if (result?.stdout.includes("gone")) return "gone";
      if (result?.stdout.includes("done")) return "done";
      if (attempt >= 200) throw new SessionError("kill", `could not signal the processes of ${pidFile} in session ${this.id}`);
      await sleep(50);
    }
  }

  /**
   * Runs a backend call that the container's pause refuses. While the container is paused by a
   * paused read (here or in another process) it waits; a pause whose holder died is undone (see
   * {@link recoverStalePause}), and a pause nobody in bulkhead holds is a
   * {@link SessionPausedError}. The backend's faults become typed errors of `step`.
   */
  async #unlessPaused<TResult>(step: string, call: () => Promise<TResult>): Promise<TResult> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        if (this.backend.faultOf(error) !== "paused") throw sessionFault(error, step, this.id, this.backend.faultOf(error));
        if (attempt === 0 && (await recoverStalePause(this, step))) continue;
        if (pauseHolders(this).length === 0)
          throw new SessionPausedError(step, this.id, "paused outside bulkhead: session.start() unpauses it", error);
        if (attempt >= 3000)
          throw new SessionPausedError(step, this.id, `held by process ${pauseHolders(this).join(", ")} for over a minute`, error);
        await sleep(20);
      }
    }
  }

  /**
   * The host disk the workspace uses now, in bytes (see {@link diskUsage}). Over
   * `resources.diskMb`, the running jobs and execs are stopped and a {@link DiskLimitError} is
   * thrown: harvest code calls this before it takes anything from the workspace.
   */
  async assertWithinDisk(): Promise<{ usedBytes: number; limitBytes: number | undefined }> {
    const limitBytes = this.#state.diskLimitBytes;
    const { bytes: usedBytes } = diskUsage(this.#state.workspace);
    if (limitBytes === undefined || usedBytes <= limitBytes) return { usedBytes, limitBytes };
    await this.#stopEverything();
    throw new DiskLimitError("disk", this.id, usedBytes, limitBytes);
  }

  /** Stops every job still running and this object's running execs: the workspace is over its disk limit. */
  async #stopEverything(): Promise<void> {
    const running = this.#state.jobs.filter((job) => job.exitCode === undefined && !job.lost);
    await this.#updateState((state) => {
      for (const job of state.jobs) if (running.some((entry) => entry.id === job.id)) job.stopped = "disk-limit";
    }).catch(() => undefined);
    await Promise.all([
      ...running.map((job) => new Job(this, job.id).kill({ graceMs: 0 }).catch(() => undefined)),
      ...[...this.#runningExecs].map((pidFile) => this.#stopProcess(pidFile, 0).catch(() => undefined)),
    ]);
  }

  /**
   * Watches `resources.diskMb` while the returned function is not called: execs, `job.wait()` and
   * `job.logs({ follow })` hold it. The workspace is measured every second, or less often when a
   * walk of it takes long (at most a tenth of the time is spent walking); over the limit, running
   * jobs and execs are stopped.
   */
  #watchDisk(): () => void {
    if (this.#state.diskLimitBytes === undefined) return () => undefined;
    this.#diskWatchers++;
    const schedule = (delayMs: number) => {
      this.#diskTimer = setTimeout(() => {
        if (this.#diskChecking) return;
        this.#diskChecking = true;
        const started = Date.now();
        this.assertWithinDisk()
          .catch(() => undefined)
          .finally(() => {
            this.#diskChecking = false;
            if (this.#diskWatchers > 0) schedule(Math.max(1000, (Date.now() - started) * 10));
          });
      }, delayMs);
      // A watcher never keeps a process alive by itself.
      this.#diskTimer.unref();
    };
    if (this.#diskWatchers === 1) schedule(0);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#diskWatchers--;
      if (this.#diskWatchers === 0 && this.#diskTimer) {
        clearTimeout(this.#diskTimer);
        this.#diskTimer = undefined;
      }
    };
  }

  /** A job by id, also one started by another process. */
  job(id: string): Job {
    if (!this.#state.jobs.some((job) => job.id === id)) throw new SessionError("job", `session ${this.id} has no job "${id}"`);
    return new Job(this, id);
  }

  /** Every job of the session, as its state file records them. */
  jobs(): JobRecord[] {
    return this.#state.jobs;
  }

  /**
   * What the agent changed, once, as data: per cloned repo, the base and head commits, the
   * agent's commits, and every path whose content differs from the base tree (added, modified,
   * deleted; a file's bytes or a link's target). Read as hostile bytes with the container paused:
   * nothing runs in the workspace, no link is followed, every hash is recomputed on the host, and
   * the agent's index, config, attributes and stat data are never used. See docs/sandbox.md.
   *
   * @example
   * const { repos } = await session.changes();
   * for (const change of repos[0]!.paths) console.log(change.kind, change.path);
   */
  async changes(options: ChangesOptions = {}): Promise<ChangeSet> {
    return readSessionChanges(this, options);
  }

  /**
   * Brings each cloned repo's change (and each worktree job's) back to its source repository as
   * a commit on `refs/bulkhead/<session>/<session>` (a job's: `refs/bulkhead/<session>/<job>`),
   * written there from the change set's bytes on top of the base commit, never touching the
   * checked-out branch. With `strict`, it is all or nothing: refs written in this call are put
   * back if any repo fails or diverged. Pass `changes` (from {@link changes}) to fetch exactly
   * what was reviewed. `abortSignal` is checked before each repo; an abort puts back what this
   * call wrote and throws `AbortedError`.
   */
  async fetchCode(options: FetchCodeOptions = {}): Promise<FetchResult[]> {
    return fetchSessionCode(this, options);
  }

  /** The effective security settings, read back from the container. */
  async inspectSecurity(): Promise<SecurityReport> {
    const info = await this.backend.inspect(this.instance).catch(this.#fault("inspect"));
    if (!info) throw sessionFault(new Error("no such container"), "inspect", this.id, "missing");
    return {
      ...info.security,
      // By identity (device and inode), as the project check does: a link or hard link counts.
      dockerSocketMounted: info.security.binds.some((bind) => findEngineSocket(bind.split(":")[0]!) !== undefined),
    };
  }

  /**
   * Stops the container and keeps the workspace and state: `start()` resumes. Idempotent; the
   * report says what it found and what it kept.
   */
  async stop(): Promise<StopReport> {
    const container = await this.backend.stop(this.instance, { graceMs: 5000 }).catch(this.#fault("stop"));
    return { sessionId: this.id, container, kept: { workspace: this.#state.workspace, stateDir: sessionDir(this.home, this.id) } };
  }

  /**
   * Starts a stopped session's container again, and unpauses a paused one: a pause whose holder
   * died (a controller killed during a paused read) or one made outside bulkhead. A pause a live
   * bulkhead process holds is waited for by execs instead: then this throws a {@link SessionPausedError}.
   */
  async start(): Promise<void> {
    await recoverStalePause(this, "start");
    const info = await this.backend.inspect(this.instance).catch(this.#fault("start"));
    if (!info) throw sessionFault(new Error("no such container"), "start", this.id, "missing");
    if (info.state === "paused") {
      const holders = pauseHolders(this);
      if (holders.length > 0)
        throw new SessionPausedError(
          "start",
          this.id,
          `process ${holders.join(", ")} is reading the workspace; call again when it is done`,
        );
      await this.backend.unpause(this.instance).catch(this.#fault("start"));
    }
    await this.backend.start(this.instance).catch(this.#fault("start"));
  }

  /**
   * Files of each cloned repo whose content differs from the agent's last commit on its branch
   * (changed, added or deleted, not committed), from the same read as {@link changes}.
   */
  async uncommitted(): Promise<Record<string, string[]>> {
    return sessionUncommitted(this);
  }

  /**
   * A file of a cloned repo as the agent left it, read without following links: `{ kind: "file",
   * content }`, `{ kind: "link", target }`, or `{ kind: "missing" }`. The path must stay in the repo.
   * A file over `maxBytes` ({@link MAX_WORKSPACE_FILE_BYTES}, 64 MiB, by default) is not read at
   * all: a {@link WorkspaceFileTooLargeError} says how large it is.
   */
  readWorkspaceFile(
    repo: string,
    file: string,
    /** `maxBytes`: the largest file read. @default 64 MiB ({@link MAX_WORKSPACE_FILE_BYTES}) */
    { maxBytes = MAX_WORKSPACE_FILE_BYTES }: { maxBytes?: number } = {},
  ): { kind: "file"; content: Buffer } | { kind: "link"; target: string } | { kind: "missing" } {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0)
      throw new InvalidArgumentError("options.maxBytes", `expected a whole number of bytes, got ${maxBytes}`);
    const entry = this.#state.repos.find((candidate) => candidate.name === repo && candidate.mode === "clone");
    if (!entry) throw new InvalidArgumentError("repo", `"${repo}" is not a cloned repo of session ${this.id}`);
    const normalized = normalizeRepoPath(file);
    if (!normalized.ok) throw new PathOutsideRootError(file, repo, normalized.reason);
    return readInside(
      join(this.#state.workspace, repo),
      normalized.path,
      (reason, problem) => {
        throw problem === "outside"
          ? new PathOutsideRootError(file, repo, reason)
          : new InvalidArgumentError("file", `${repo}/${file} ${reason}`);
      },
      {
        maxBytes,
        tooLarge: (sizeBytes) => {
          throw new WorkspaceFileTooLargeError("read", `${repo}/${normalized.path}`, sizeBytes, maxBytes);
        },
      },
    );
  }

  /**
   * Deletes container and workspace; refuses while a change is not fetched (`fetchCode`) unless
   * `force`. With `registration`, the session is forgotten in the team's registry first. The
   * report says what went and what stayed (the refs `fetchCode` wrote in the source repos).
   */
  async remove(
    options: {
      /** Remove even when a change was not fetched. @default false */
      readonly force?: boolean;
      /** The team registry to forget the session in. @default none */
      readonly registration?: SessionRegistration;
    } = {},
  ): Promise<RemoveReport> {
    const { force = false, registration } = validateOptions(removeOptionsSchema(), options, "options");
    if (!force) await assertAllFetched(this);
    // Forgotten by the team first: when the registry cannot be reached, nothing is removed and rm can run again.
    if (registration) await unregisterSession(registration, this.id);
    const container = await this.backend.remove(this.instance).catch(this.#fault("remove"));
    const refs: { repo: string; ref: string; commit: string }[] = [];
    for (const repo of this.#state.repos.filter((entry) => entry.mode === "clone")) {
      const listed = await git(repo.source, ["for-each-ref", "--format=%(objectname) %(refname)", `refs/bulkhead/${this.id}/`]).catch(
        () => "",
      );
      for (const line of listed.split("\n").filter(Boolean)) {
        const [commit, ref] = line.split(" ") as [string, string];
        refs.push({ repo: repo.name, ref, commit });
      }
    }
    const removedDir = sessionDir(this.home, this.id);
    rmSync(removedDir, { recursive: true, force: true });
    return { sessionId: this.id, container, removedDir, unregistered: registration !== undefined, kept: { refs } };
  }

  /** Stops the session when this object owns it (`createSession`); a looked-up one is left as it is. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.ownsLifecycle) await this.stop();
  }
}

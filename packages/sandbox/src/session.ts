import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { type ChangeSet, InvalidArgumentError, normalizeRepoPath, PathOutsideRootError, throwIfAborted } from "@bulkhead/core";
import type Docker from "dockerode";
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

/** How a command in the session ended. */
export interface ExecResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  canceled: boolean;
}

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
 */
const SIGNAL_GROUP =
  'read -r pid < "$1" 2>/dev/null || { echo gone; exit 0; }; case "$pid" in ""|*[!0-9]*) echo gone; exit 0;; esac; ' +
  'if [ "$2" = probe ]; then kill -0 "-$pid" 2>/dev/null || kill -0 "$pid" 2>/dev/null || echo gone; echo done; exit 0; fi; ' +
  'i=0; while [ $i -lt 20 ]; do kill -s "$2" "-$pid" 2>/dev/null || kill -s "$2" "$pid" 2>/dev/null || break; ' +
  '[ "$2" = KILL ] || break; i=$((i+1)); done; echo done';

/**
 * Starts an exec without attaching. The daemon still answers with a stream: it is drained here,
 * or its socket would stay open and keep a short-lived process (the CLI) from exiting.
 */
async function startDetached(exec: Docker.Exec): Promise<void> {
  const stream = (await exec.start({ Detach: true })) as NodeJS.ReadableStream | undefined;
  stream?.resume();
}

/** A started container session over a multi-repo workspace (seed 002). */
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

  constructor(
    state: SessionState,
    readonly docker: Docker,
    readonly home: string,
  ) {
    this.#state = state;
  }

  get id(): string {
    return this.#state.id;
  }

  get state(): SessionState {
    return this.#state;
  }

  get container(): Docker.Container {
    return this.docker.getContainer(`bulkhead-${this.id}`);
  }

  /**
   * Changes the state file under a lock, so several processes can record jobs.
   * @internal used by `Job`; not part of the public API.
   */
  async updateState(change: (state: SessionState) => void): Promise<void> {
    this.#state = await updateSessionState(this.home, this.id, change);
  }

  /** Runs a command to completion. `abortSignal` and `timeoutMs` kill it inside the container. */
  async exec(
    command: readonly string[],
    options: { env?: Record<string, string>; cwd?: string; stdin?: string; timeoutMs?: number; abortSignal?: AbortSignal } = {},
  ): Promise<ExecResult> {
    return this.#collect(command, options);
  }

  async #collect(
    command: readonly string[],
    options: { env?: Record<string, string>; cwd?: string; stdin?: string; timeoutMs?: number; abortSignal?: AbortSignal; plain?: boolean },
  ): Promise<ExecResult> {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const result = await this.#run(command, options, (stream, data) => (stream === "stdout" ? out : err).push(data));
    return { ...result, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") };
  }

  /** Runs a command and yields its output as demultiplexed chunks as they arrive. */
  async *execStream(
    command: readonly string[],
    options: { env?: Record<string, string>; cwd?: string; stdin?: string; timeoutMs?: number; abortSignal?: AbortSignal } = {},
  ): AsyncGenerator<{ stream: "stdout" | "stderr"; data: Buffer }, Omit<ExecResult, "stdout" | "stderr">> {
    const queue: { stream: "stdout" | "stderr"; data: Buffer }[] = [];
    let wake: (() => void) | undefined;
    let finished: Omit<ExecResult, "stdout" | "stderr"> | undefined;
    let failed: { error: unknown } | undefined;
    const done = this.#run(command, options, (stream, data) => {
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
    {
      env = {},
      cwd,
      stdin,
      timeoutMs,
      abortSignal,
      plain = false,
    }: { env?: Record<string, string>; cwd?: string; stdin?: string; timeoutMs?: number; abortSignal?: AbortSignal; plain?: boolean },
    onData: (stream: "stdout" | "stderr", data: Buffer) => void,
  ): Promise<Omit<ExecResult, "stdout" | "stderr">> {
    if (!Array.isArray(command) || command.length === 0 || !command.every((part) => typeof part === "string"))
      throw new InvalidArgumentError("command", "expected an argument list of strings");
    checkEnv(env, "options.env");
    if (cwd !== undefined && (typeof cwd !== "string" || !cwd.startsWith("/")))
      throw new InvalidArgumentError("options.cwd", `expected an absolute path inside the container, got ${JSON.stringify(cwd)}`);
    throwIfAborted(abortSignal, "exec");
    const pidFile = `/tmp/.bulkhead-exec-${randomBytes(6).toString("hex")}`;
    // Only a command that may be killed (a timeout, an abort, a disk limit to keep) runs as the
    // leader of its own process group, under a shell that records its pid first.
    // `plain`: bulkhead's own signaller, which must not need a second pid (see SIGNAL_GROUP).
    const killable = !plain && (timeoutMs !== undefined || abortSignal !== undefined || this.#state.diskLimitBytes !== undefined);
    const { exec, started: stream } = await this.#execStart(
      "exec",
      {
        Cmd: killable ? ["/bin/sh", "-c", GROUP_LEADER, pidFile, ...command] : [...command],
        AttachStdout: true,
        AttachStderr: true,
        AttachStdin: stdin !== undefined,
        // The container was created with the session's user, environment and working directory, and
        // an exec inherits them: send only what this call changes, so the request is raw dockerode's.
        ...(Object.keys(env).length > 0 ? { Env: Object.entries(env).map(([key, value]) => `${key}=${value}`) } : {}),
        ...(cwd !== undefined ? { WorkingDir: cwd } : {}),
      },
      // Without stdin the output comes back as a plain streamed response: no connection upgrade,
      // and the keep-alive connection is reused (measured ~2% faster per round trip).
      (created) => created.start({ hijack: stdin !== undefined, stdin: stdin !== undefined }),
    );
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    stdout.on("data", (data: Buffer) => onData("stdout", data));
    stderr.on("data", (data: Buffer) => onData("stderr", data));
    this.docker.modem.demuxStream(stream, stdout, stderr);
    if (stdin !== undefined) stream.end(stdin);
    let timedOut = false;
    let canceled = false;
    const kill = () => void this.stopProcess(pidFile, 1000).catch(() => undefined);
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => ((timedOut = true), kill()), timeoutMs);
    const onAbort = () => ((canceled = true), kill());
    abortSignal?.addEventListener("abort", onAbort, { once: true });
    if (killable) this.#runningExecs.add(pidFile);
    const release = plain ? () => undefined : this.watchDisk();
    try {
      await new Promise<void>((resolve, reject) => {
        stream.on("end", resolve);
        stream.on("close", resolve);
        stream.on("error", reject);
      });
      // The demultiplexer may still hold output: drain both sides before reporting.
      const drained = Promise.all([stdout, stderr].map((side) => new Promise((resolve) => side.on("end", resolve))));
      stdout.end();
      stderr.end();
      await drained;
    } finally {
      if (timer) clearTimeout(timer);
      abortSignal?.removeEventListener("abort", onAbort);
      this.#runningExecs.delete(pidFile);
      release();
    }
    const { ExitCode } = await exec.inspect().catch((error: unknown) => {
      throw sessionFault(error, "exec", this.id);
    });
    return { exitCode: ExitCode ?? null, timedOut, canceled };
  }

  /** Starts a detached job (the agent by default); its output goes to a log file on the host. */
  async inject(
    job: { command?: string[]; env?: Record<string, string>; id?: string } = {},
    { worktree = false }: { worktree?: boolean } = {},
  ): Promise<Job> {
    const command = job.command ?? this.#state.agent?.command;
    if (!command || command.length === 0) throw new InvalidArgumentError("job.command", "the project has no agent command: pass one");
    const id = job.id ?? `j-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(id)) throw new InvalidArgumentError("job.id", `"${id}" is not a usable job id`);
    // A reused id would find the earlier job's exit file and log.
    if (this.#state.jobs.some((existing) => existing.id === id))
      throw new InvalidArgumentError("job.id", `session ${this.id} already has a job "${id}": give each job its own id`);
    checkEnv(job.env, "job.env");
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
    await this.#execStart(
      "inject",
      {
        Cmd: [
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
        Env: Object.entries({ ...this.#state.env, ...this.#state.agent?.env, ...job.env }).map(([key, value]) => `${key}=${value}`),
        WorkingDir: workdir,
        User: this.#state.user,
      },
      startDetached,
    );
    const containerStartedAt = await this.container.inspect().then(
      (info) => info.State.StartedAt,
      (error: unknown) => {
        throw sessionFault(error, "inject", this.id);
      },
    );
    await this.updateState((state) =>
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
   * group, then, if any of it is left after `graceMs` (at once when it is 0), SIGKILL (repeated until nothing of the
   * group is left, so a fork bomb goes too). Used for an exec's timeout or abort and by
   * `job.kill()`; not meant to be called directly.
   * @internal
   */
  async stopProcess(pidFile: string, graceMs: number): Promise<void> {
    if (graceMs <= 0) {
      await this.#signalGroup(pidFile, "KILL");
      return;
    }
    if ((await this.#signalGroup(pidFile, "TERM")) === "gone") return;
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(100, Math.max(0, deadline - Date.now()))));
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
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /**
   * Creates and starts an exec. While the container is paused by a paused read (here or in
   * another process) the daemon refuses both steps: it waits; a pause whose holder died is undone
   * (see {@link recoverStalePause}), and a pause nobody in bulkhead holds is a
   * {@link SessionPausedError}. Docker's faults become typed errors of `step`.
   */
  async #execStart<TStarted>(
    step: string,
    options: Docker.ExecCreateOptions,
    start: (exec: Docker.Exec) => Promise<TStarted>,
  ): Promise<{ exec: Docker.Exec; started: TStarted }> {
    for (let attempt = 0; ; attempt++) {
      try {
        const exec = await this.container.exec(options);
        return { exec, started: await start(exec) };
      } catch (error) {
        if (!/paused/i.test((error as Error).message)) throw sessionFault(error, step, this.id);
        if (attempt === 0 && (await recoverStalePause(this, step))) continue;
        if (pauseHolders(this).length === 0)
          throw new SessionPausedError(step, this.id, "paused outside bulkhead: session.start() unpauses it", error);
        if (attempt >= 3000)
          throw new SessionPausedError(step, this.id, `held by process ${pauseHolders(this).join(", ")} for over a minute`, error);
        await new Promise((resolve) => setTimeout(resolve, 20));
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
    await this.updateState((state) => {
      for (const job of state.jobs) if (running.some((entry) => entry.id === job.id)) job.stopped = "disk-limit";
    }).catch(() => undefined);
    await Promise.all([
      ...running.map((job) => new Job(this, job.id).kill({ graceMs: 0 }).catch(() => undefined)),
      ...[...this.#runningExecs].map((pidFile) => this.stopProcess(pidFile, 0).catch(() => undefined)),
    ]);
  }

  /**
   * Watches `resources.diskMb` while the returned function is not called: execs, `job.wait()` and
   * `job.logs({ follow })` hold it. The workspace is measured every second, or less often when a
   * walk of it takes long (at most a tenth of the time is spent walking); over the limit, running
   * jobs and execs are stopped. Not meant to be called directly.
   * @internal
   */
  watchDisk(): () => void {
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
   * what was reviewed.
   */
  async fetchCode(options: FetchCodeOptions = {}): Promise<FetchResult[]> {
    return fetchSessionCode(this, options);
  }

  /** The effective security settings, read back from the container. */
  async inspectSecurity(): Promise<{
    user: string;
    capDrop: string[];
    capAdd: string[];
    securityOpt: string[];
    networkMode: string;
    readonlyRootfs: boolean;
    privileged: boolean;
    pidsLimit: number;
    memoryBytes: number;
    nanoCpus: number;
    binds: string[];
    dockerSocketMounted: boolean;
    devices: string[];
    runtime: string;
    env: string[];
  }> {
    const info = await this.container.inspect().catch((error: unknown) => {
      throw sessionFault(error, "inspect", this.id);
    });
    const host = info.HostConfig as Docker.HostConfig & { NanoCpus?: number };
    const binds = host.Binds ?? [];
    return {
      user: info.Config.User,
      capDrop: host.CapDrop ?? [],
      capAdd: host.CapAdd ?? [],
      securityOpt: host.SecurityOpt ?? [],
      networkMode: host.NetworkMode ?? "",
      readonlyRootfs: host.ReadonlyRootfs ?? false,
      privileged: host.Privileged ?? false,
      pidsLimit: host.PidsLimit ?? 0,
      memoryBytes: host.Memory ?? 0,
      nanoCpus: host.NanoCpus ?? 0,
      binds,
      // By identity (device and inode), as the project check does: a link or hard link counts.
      dockerSocketMounted: binds.some((bind) => findEngineSocket(bind.split(":")[0]!) !== undefined),
      devices: (host.Devices ?? []).map((device: { PathInContainer: string }) => device.PathInContainer),
      runtime: host.Runtime ?? "runc",
      env: info.Config.Env ?? [],
    };
  }

  /** Stops the container and keeps the workspace. Idempotent. */
  async stop(): Promise<void> {
    await this.container.stop({ t: 5 }).catch((error: { statusCode?: number }) => {
      if (error.statusCode !== 304 && error.statusCode !== 404) throw sessionFault(error, "stop", this.id);
    });
  }

  /**
   * Starts a stopped session's container again, and unpauses a paused one: a pause whose holder
   * died (a controller killed during a paused read) or one made outside bulkhead. A pause a live
   * bulkhead process holds is waited for by execs instead: then this throws a {@link SessionPausedError}.
   */
  async start(): Promise<void> {
    await recoverStalePause(this, "start");
    const state = await this.container.inspect().then(
      (info) => info.State,
      (error: unknown) => {
        throw sessionFault(error, "start", this.id);
      },
    );
    if (state.Paused) {
      const holders = pauseHolders(this);
      if (holders.length > 0)
        throw new SessionPausedError(
          "start",
          this.id,
          `process ${holders.join(", ")} is reading the workspace; call again when it is done`,
        );
      await this.container.unpause().catch((error: unknown) => {
        throw sessionFault(error, "start", this.id);
      });
    }
    await this.container.start().catch((error: { statusCode?: number }) => {
      if (error.statusCode !== 304) throw sessionFault(error, "start", this.id);
    });
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

  /** Deletes container and workspace; refuses while a change is not fetched (`fetchCode`) unless `force`. */
  async remove({ force = false, registration }: { force?: boolean; registration?: SessionRegistration } = {}): Promise<void> {
    if (!force) await assertAllFetched(this);
    // Forgotten by the team first: when the registry cannot be reached, nothing is removed and rm can run again.
    if (registration) await unregisterSession(registration, this.id);
    await this.container.remove({ force: true }).catch((error: { statusCode?: number }) => {
      if (error.statusCode !== 404) throw sessionFault(error, "remove", this.id);
    });
    rmSync(sessionDir(this.home, this.id), { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Environment names a shell accepts, and string values: anything else is refused up front. */
function checkEnv(env: Record<string, string> | undefined, name: string): void {
  if (env === undefined) return;
  if (typeof env !== "object" || env === null) throw new InvalidArgumentError(name, "expected { NAME: value }");
  for (const [key, value] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new InvalidArgumentError(name, `"${key}" is not an environment variable name`);
    if (typeof value !== "string") throw new InvalidArgumentError(name, `${key} must be a string, got ${typeof value}`);
  }
}

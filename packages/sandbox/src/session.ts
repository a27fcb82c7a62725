import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { type ChangeSet, InvalidArgumentError, normalizeRepoPath, PathOutsideRootError, throwIfAborted } from "@bulkhead/core";
import type Docker from "dockerode";
import { Job } from "./job.js";
import { addJobWorktrees } from "./job-worktrees.js";
import { readInside } from "./read-inside.js";
import { SessionError } from "./sandbox-errors.js";
import { sessionDir, updateSessionState, type JobRecord, type SessionState } from "./session-state-store.js";
import { readSessionChanges, type ChangesOptions } from "./session-changes.js";
import { assertAllFetched, fetchSessionCode, sessionUncommitted, type FetchCodeOptions, type FetchResult } from "./workspace-inspection.js";

/** How a command in the session ended. */
export interface ExecResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  canceled: boolean;
}

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

  /** Changes the state file under a lock, so several processes can record jobs. */
  async updateState(change: (state: SessionState) => void): Promise<void> {
    this.#state = await updateSessionState(this.home, this.id, change);
  }

  /** Runs a command to completion. `abortSignal` and `timeoutMs` kill it inside the container. */
  async exec(
    command: readonly string[],
    options: { env?: Record<string, string>; cwd?: string; stdin?: string; timeoutMs?: number; abortSignal?: AbortSignal } = {},
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
    }: { env?: Record<string, string>; cwd?: string; stdin?: string; timeoutMs?: number; abortSignal?: AbortSignal },
    onData: (stream: "stdout" | "stderr", data: Buffer) => void,
  ): Promise<Omit<ExecResult, "stdout" | "stderr">> {
    if (!Array.isArray(command) || command.length === 0 || !command.every((part) => typeof part === "string"))
      throw new InvalidArgumentError("command", "expected an argument list of strings");
    checkEnv(env, "options.env");
    if (cwd !== undefined && (typeof cwd !== "string" || !cwd.startsWith("/")))
      throw new InvalidArgumentError("options.cwd", `expected an absolute path inside the container, got ${JSON.stringify(cwd)}`);
    throwIfAborted(abortSignal, "exec");
    const pidFile = `/tmp/.bulkhead-exec-${randomBytes(6).toString("hex")}`;
    // Only a command that may be killed runs under a shell that records its pid first.
    const killable = timeoutMs !== undefined || abortSignal !== undefined;
    const { exec, started: stream } = await this.#execStart(
      {
        Cmd: killable ? ["/bin/sh", "-c", 'echo $$ > "$0"; exec "$@"', pidFile, ...command] : [...command],
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
    }
    const { ExitCode } = await exec.inspect();
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
      {
        Cmd: [
          "/bin/sh",
          "-c",
          // The command runs in the background so that its pid can be recorded for job.kill().
          'log=$1; ex=$2; shift 2; "$@" > "$log" 2>&1 & echo $! > "$ex.pid"; wait $!; echo $? > "$ex.tmp" && mv "$ex.tmp" "$ex"',
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
    const containerStartedAt = (await this.container.inspect()).State.StartedAt;
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
   * Stops the process whose pid a file in the container holds: SIGTERM, then SIGKILL after
   * `graceMs`. Used for an exec's timeout or abort and by `job.kill()`; not meant to be called
   * directly.
   * @internal
   */
  async stopProcess(pidFile: string, graceMs: number): Promise<void> {
    const seconds = Math.max(0, Math.ceil(graceMs / 1000));
    await this.#execStart(
      {
        Cmd: [
          "/bin/sh",
          "-c",
          `pid=$(cat "${pidFile}") || exit 0; kill -TERM "$pid" 2>/dev/null; sleep ${seconds}; kill -KILL "$pid" 2>/dev/null; true`,
        ],
        User: this.#state.user,
      },
      startDetached,
    );
  }

  /**
   * Creates and starts an exec, waiting while the container is briefly paused by {@link #frozen}
   * (here or in another process): the daemon refuses both steps then.
   */
  async #execStart<TStarted>(
    options: Docker.ExecCreateOptions,
    start: (exec: Docker.Exec) => Promise<TStarted>,
  ): Promise<{ exec: Docker.Exec; started: TStarted }> {
    for (let attempt = 0; ; attempt++) {
      try {
        const exec = await this.container.exec(options);
        return { exec, started: await start(exec) };
      } catch (error) {
        if (!/paused/i.test((error as Error).message) || attempt >= 500) throw error;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
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
    const info = await this.container.inspect();
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
      dockerSocketMounted: binds.some((bind) => bind.includes("docker.sock")),
      devices: (host.Devices ?? []).map((device: { PathInContainer: string }) => device.PathInContainer),
      runtime: host.Runtime ?? "runc",
      env: info.Config.Env ?? [],
    };
  }

  /** Stops the container and keeps the workspace. Idempotent. */
  async stop(): Promise<void> {
    await this.container.stop({ t: 5 }).catch((error: { statusCode?: number }) => {
      if (error.statusCode !== 304 && error.statusCode !== 404) throw error;
    });
  }

  /** Starts a stopped session's container again. */
  async start(): Promise<void> {
    await this.container.start().catch((error: { statusCode?: number }) => {
      if (error.statusCode !== 304) throw error;
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
   */
  readWorkspaceFile(
    repo: string,
    file: string,
  ): { kind: "file"; content: Buffer } | { kind: "link"; target: string } | { kind: "missing" } {
    const entry = this.#state.repos.find((candidate) => candidate.name === repo && candidate.mode === "clone");
    if (!entry) throw new InvalidArgumentError("repo", `"${repo}" is not a cloned repo of session ${this.id}`);
    const normalized = normalizeRepoPath(file);
    if (!normalized.ok) throw new PathOutsideRootError(file, repo, normalized.reason);
    return readInside(join(this.#state.workspace, repo), normalized.path, (reason, problem) => {
      throw problem === "outside"
        ? new PathOutsideRootError(file, repo, reason)
        : new InvalidArgumentError("file", `${repo}/${file} ${reason}`);
    });
  }

  /** Deletes container and workspace; refuses while a change is not fetched (`fetchCode`) unless `force`. */
  async remove({ force = false }: { force?: boolean } = {}): Promise<void> {
    if (!force) await assertAllFetched(this);
    await this.container.remove({ force: true }).catch((error: { statusCode?: number }) => {
      if (error.statusCode !== 404) throw error;
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

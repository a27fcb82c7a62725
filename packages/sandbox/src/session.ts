import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join, relative } from "node:path";
import { PassThrough } from "node:stream";
import {
  InvalidArgumentError,
  normalizeRepoPath,
  PathOutsideRootError,
  throwIfAborted,
  withFileLock,
  writeFileAtomic,
} from "@bulkhead/core";
import Docker from "dockerode";
import { buildImage, LABEL } from "./build-image.js";
import { checkDevices, containerSpec, homeLabel, type GrantedDevices } from "./container-spec.js";
import { git, run, workspaceGit } from "./git.js";
import type { Project } from "./project-config.js";
import { SessionError } from "./sandbox-errors.js";

const VERSION = "0.1.0";

/** A job record, kept in the session state so any process can find it again. */
export interface JobRecord {
  id: string;
  command: string[];
  startedAt: string;
  /** With `worktree: true`: the job's own branch, checked out in a worktree of every cloned repo. */
  worktree?: { branch: string; path: string };
  endedAt?: string;
  exitCode?: number;
  /** When the container the job runs in was started: a different value later means it restarted. */
  containerStartedAt?: string;
  /** The job ended without an exit code: its container stopped or restarted while it ran. */
  lost?: boolean;
}

/** What a session remembers on disk, beside its container's labels. */
export interface SessionState {
  id: string;
  project: string;
  configHash: string;
  tag: string;
  createdAt: string;
  workspace: string;
  user: string;
  workdir: string;
  env: Record<string, string>;
  agent?: { command: string[]; env?: Record<string, string> };
  granted: GrantedDevices;
  repos: { name: string; mode: "clone" | "mount-ro"; source: string; branch: string; baseSha: string }[];
  jobs: JobRecord[];
}

/** How a command in the session ended. */
export interface ExecResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  canceled: boolean;
}

/** One repo's code brought back to its source repository. */
export interface FetchResult {
  repo: string;
  branch: string;
  baseSha: string;
  headSha: string;
  commits: number;
  changedFiles: string[];
  uncommitted: string[];
  status: "fetched" | "unchanged" | "diverged" | "failed";
  /** Where the commits arrived in the source repo. */
  ref?: string;
  error?: string;
}

const defaultHome = () => process.env.BULKHEAD_HOME ?? join(homedir(), ".bulkhead");
const sessionDir = (home: string, id: string) => join(home, "sessions", id);

/** A detached job running in a session. */
export class Job {
  constructor(
    readonly session: Session,
    readonly id: string,
  ) {}

  get #log(): string {
    return join(this.session.state.workspace, ".bulkhead", "jobs", `${this.id}.log`);
  }

  get #exit(): string {
    return join(this.session.state.workspace, ".bulkhead", "jobs", `${this.id}.exit`);
  }

  /**
   * Reads a job file the container wrote. The container owns the directory, so the file or a
   * directory above it may be a link it planted to a host file: the final link is refused
   * (O_NOFOLLOW), and the opened file must be the very path under the workspace.
   */
  #read(path: string): Buffer | undefined {
    const found = readInside(this.session.state.workspace, relative(this.session.state.workspace, path), (reason) => {
      throw new SessionError("job", `${path} ${reason}`);
    });
    if (found.kind === "link") throw new SessionError("job", `${path} is a symbolic link: a job file is never read through a link`);
    return found.kind === "file" ? found.content : undefined;
  }

  /**
   * True when the job can no longer end by itself: its container is not running, or was
   * restarted since the job started (a dockerd restart), so its process is gone.
   */
  async #lost(): Promise<boolean> {
    const record = this.session.state.jobs.find((job) => job.id === this.id);
    const state = await this.session.container
      .inspect()
      .then((info) => info.State)
      .catch(() => undefined);
    const lost = !state?.Running || (record?.containerStartedAt !== undefined && state.StartedAt !== record.containerStartedAt);
    // The job may have finished just before the container went away.
    return lost && !existsSync(this.#exit);
  }

  #lostError(): SessionError {
    return new SessionError(
      "job",
      `job ${this.id} ended without an exit code: its container stopped or restarted while it ran; its output so far is in ${this.#log}`,
    );
  }

  /**
   * Resolves with the exit code once the job ends, and records it in the session state. Throws
   * a SessionError when the job is lost (its container stopped or restarted under it).
   */
  async wait({ abortSignal, pollMs = 100 }: { abortSignal?: AbortSignal; pollMs?: number } = {}): Promise<{ exitCode: number }> {
    const checkEvery = Math.max(1, Math.round(1000 / pollMs));
    for (let round = 1; ; round++) {
      throwIfAborted(abortSignal, `job ${this.id}`);
      if (round % checkEvery === 0 && (await this.#lost())) {
        await this.session.updateState((state) => {
          const record = state.jobs.find((job) => job.id === this.id);
          if (record && record.exitCode === undefined) Object.assign(record, { lost: true, endedAt: new Date().toISOString() });
        });
        throw this.#lostError();
      }
      const exitText = this.#read(this.#exit);
      if (exitText !== undefined) {
        const exitCode = Number(exitText.toString("utf8").trim());
        await this.session.updateState((state) => {
          const record = state.jobs.find((job) => job.id === this.id);
          if (record && record.exitCode === undefined) Object.assign(record, { exitCode, endedAt: new Date().toISOString() });
        });
        return { exitCode };
      }
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  /**
   * Stops the job's command inside the container (SIGTERM, then SIGKILL after `graceMs`); its exit
   * code is then 143 or 137. For an agent a budget stopped, say. Does nothing once the job ended.
   */
  async kill({ graceMs = 2000 }: { graceMs?: number } = {}): Promise<void> {
    if (this.#read(this.#exit) !== undefined) return;
    await this.session.stopProcess(`/workspace/.bulkhead/jobs/${this.id}.exit.pid`, graceMs);
  }

  /** The job's output so far, or, with `follow`, as it is written until the job ends. */
  async *logs({ follow = false, pollMs = 100 }: { follow?: boolean; pollMs?: number } = {}): AsyncGenerator<string> {
    const checkEvery = Math.max(1, Math.round(1000 / pollMs));
    let offset = 0;
    for (let round = 1; ; round++) {
      const ended = this.#read(this.#exit) !== undefined || (follow && round % checkEvery === 0 && (await this.#lost()));
      const text = this.#read(this.#log) ?? Buffer.alloc(0);
      if (text.length > offset) {
        yield text.subarray(offset).toString("utf8");
        offset = text.length;
      }
      if (!follow || ended) return;
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }
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
    const dir = sessionDir(this.home, this.id);
    await withFileLock(join(dir, ".state.lock"), async () => {
      const state = JSON.parse(readFileSync(join(dir, "state.json"), "utf8")) as SessionState;
      change(state);
      await writeFileAtomic(join(dir, "state.json"), JSON.stringify(state, null, 2), { mode: 0o600 });
      this.#state = state;
    });
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
      const added = this.#worktreesAdded.then(() => this.#addWorktrees({ branch, path: `.bulkhead/worktrees/${id}` }));
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
   * A worktree per cloned repo on the job's own branch, so parallel jobs never share a working
   * tree. The worktree's `.git` file points back relatively, so git works inside the container too.
   */
  async #addWorktrees(worktree: NonNullable<JobRecord["worktree"]>): Promise<void> {
    // All of it with the container paused, and every directory checked to be a real one inside
    // the workspace: the agent could have replaced .bulkhead or a directory in it with a link to
    // a host path, and the host would then create and write files there.
    await this.#frozen(async () => {
      const root = realpathSync(this.#state.workspace);
      const inside = (path: string): string => {
        const real = realpathSync(path);
        if (real !== root && !real.startsWith(`${root}/`))
          throw new SessionError("worktree", `${path} leads outside the workspace (${real}): a worktree is never made through a link`);
        return real;
      };
      // One level at a time: mkdir follows a link it meets on the way.
      const bulkhead = inside(join(this.#state.workspace, ".bulkhead"));
      mkdirSync(join(bulkhead, "worktrees"), { recursive: true });
      const worktrees = inside(join(bulkhead, "worktrees"));
      const parent = join(worktrees, basename(worktree.path));
      mkdirSync(parent, { recursive: true });
      inside(parent);
      for (const repo of this.#state.repos.filter((entry) => entry.mode === "clone")) {
        const clone = inside(join(this.#state.workspace, repo.name));
        const target = join(parent, repo.name);
        await workspaceGit(clone, ["worktree", "add", "--quiet", "-b", worktree.branch, target, `refs/heads/${repo.branch}`]);
        const gitFile = join(inside(target), ".git");
        const gitdir = readFileSync(gitFile, "utf8")
          .trim()
          .replace(/^gitdir: /, "");
        writeFileSync(gitFile, `gitdir: ${relative(target, gitdir)}\n`);
      }
    });
    if (process.getuid?.() === 0) await chownTree(this.#state.user, this.#state.workspace);
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

  /**
   * Runs host-side work on the workspace with the container paused (when it runs), so nothing in
   * it changes meanwhile: see {@link workspaceGit}.
   */
  async #frozen<TResult>(work: () => Promise<TResult>): Promise<TResult> {
    const state = await this.container.inspect().then(
      (info) => info.State,
      () => undefined,
    );
    if (!state?.Running || state.Paused) return work();
    await this.container.pause();
    try {
      return await work();
    } finally {
      await this.container.unpause().catch(() => undefined);
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
   * Brings each cloned repo's session branch back to its source repository as
   * `refs/bulkhead/<session>/<branch>`, never touching the checked-out branch. With `strict`,
   * it is all or nothing: refs fetched in this call are removed again if any repo fails.
   */
  async fetchCode({ strict = false }: { strict?: boolean } = {}): Promise<FetchResult[]> {
    const results: FetchResult[] = [];
    const fetched: { source: string; ref: string; previous: string | undefined }[] = [];
    for (const { repo: target, branch, path, ref } of this.#targets()) {
      const repo = { ...target, branch };
      const base: FetchResult = {
        repo: repo.name,
        branch: repo.branch,
        baseSha: repo.baseSha,
        headSha: repo.baseSha,
        commits: 0,
        changedFiles: [],
        uncommitted: [],
        status: "unchanged",
      };
      try {
        const headSha = await git(path, ["rev-parse", `refs/heads/${repo.branch}`]);
        const commits = Number(await git(path, ["rev-list", "--count", `${repo.baseSha}..${headSha}`]));
        const changedFiles =
          commits === 0 ? [] : (await git(path, ["diff", "--name-only", repo.baseSha, headSha])).split("\n").filter(Boolean);
        const uncommitted = await this.#frozen(() => uncommittedIn(path));
        const result: FetchResult = { ...base, headSha, commits, changedFiles, uncommitted };
        if (commits === 0) {
          results.push(result);
          continue;
        }
        const previous = await git(repo.source, ["rev-parse", "--verify", "--quiet", ref]).catch(() => undefined);
        if (
          previous &&
          previous !== headSha &&
          (await git(repo.source, ["merge-base", "--is-ancestor", previous, headSha]).then(
            () => false,
            () => true,
          ))
        ) {
          results.push({
            ...result,
            status: "diverged",
            error: `${ref} in ${repo.source} is at ${previous.slice(0, 12)}, which the session branch does not contain`,
          });
          continue;
        }
        // The workspace may belong to the container's user: tell upload-pack it is safe too.
        await git(repo.source, [
          "fetch",
          "--quiet",
          "--no-tags",
          "--upload-pack=git -c safe.directory=* upload-pack",
          path,
          `${headSha}:${ref}`,
        ]);
        fetched.push({ source: repo.source, ref, previous });
        results.push({ ...result, status: "fetched", ref });
      } catch (error) {
        results.push({ ...base, status: "failed", error: (error as Error).message });
      }
    }
    if (strict && results.some((result) => result.status === "failed" || result.status === "diverged")) {
      for (const { source, ref, previous } of fetched)
        await git(source, previous ? ["update-ref", ref, previous] : ["update-ref", "-d", ref]).catch(() => undefined);
      const failed = results.filter((result) => result.status === "failed" || result.status === "diverged");
      throw new SessionError(
        "fetch",
        `strict fetch failed for ${failed.map((result) => `${result.repo} (${result.status}: ${result.error})`).join(", ")}; nothing was fetched`,
      );
    }
    return results;
  }

  /** The session branch of every clone, then each worktree job's own branch, with the ref each arrives at. */
  #targets(): { repo: SessionState["repos"][number]; branch: string; path: string; ref: string }[] {
    const ref = (branch: string) =>
      `refs/bulkhead/${this.id}/${branch.startsWith("bulkhead/jobs/") ? branch.slice(branch.lastIndexOf("/") + 1) : this.id}`;
    return this.#state.repos
      .filter((entry) => entry.mode === "clone")
      .flatMap((repo) => [
        { repo, branch: repo.branch, path: join(this.#state.workspace, repo.name), ref: ref(repo.branch) },
        ...this.#state.jobs
          .filter((job) => job.worktree)
          .map((job) => ({
            repo,
            branch: job.worktree!.branch,
            path: join(this.#state.workspace, job.worktree!.path, repo.name),
            ref: ref(job.worktree!.branch),
          })),
      ]);
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
   * Files changed in each cloned repo's working tree and not committed (staged, modified,
   * untracked), found without running anything the clone's config names (see `fetchCode`).
   */
  async uncommitted(): Promise<Record<string, string[]>> {
    const result: Record<string, string[]> = {};
    for (const repo of this.#state.repos.filter((entry) => entry.mode === "clone"))
      result[repo.name] = await this.#frozen(() => uncommittedIn(join(this.#state.workspace, repo.name)));
    return result;
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

  /** Deletes container and workspace; refuses while commits are not fetched unless `force`. */
  async remove({ force = false }: { force?: boolean } = {}): Promise<void> {
    if (!force) {
      for (const { repo, branch, path, ref } of this.#targets()) {
        const head = await git(path, ["rev-parse", `refs/heads/${branch}`]).catch(() => repo.baseSha);
        if (head === repo.baseSha) continue;
        const fetched = await git(repo.source, ["rev-parse", "--verify", "--quiet", ref]).catch(() => undefined);
        if (fetched !== head)
          throw new SessionError(
            "remove",
            `repo ${repo.name} has commits that were not fetched: run fetchCode() first, or remove({ force: true })`,
          );
      }
    }
    await this.container.remove({ force: true }).catch((error: { statusCode?: number }) => {
      if (error.statusCode !== 404) throw error;
    });
    rmSync(sessionDir(this.home, this.id), { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/**
 * Creates a started session: a workspace on the host with a hardlinked local clone of each repo
 * on branch `bulkhead/<id>` (read-only repos are bind-mounted instead), and one long-lived,
 * hardened container over it. Creation is atomic: if a step fails, what earlier steps created is
 * removed and the error names the step.
 *
 * @example
 * await using session = await createSession(project);
 * const { stdout } = await session.exec(["git", "status"]);
 */
export async function createSession(
  project: Project,
  {
    tag,
    docker = new Docker(),
    home = defaultHome(),
    abortSignal,
  }: { tag?: string; docker?: Docker; home?: string; abortSignal?: AbortSignal } = {},
): Promise<Session> {
  throwIfAborted(abortSignal, "createSession");
  const id = `s${Date.now().toString(36)}${randomBytes(4).toString("hex")}`;
  const cleanup: (() => Promise<unknown>)[] = [];
  let step = "devices";
  try {
    const granted = await checkDevices(project, docker);
    step = "image";
    const image = tag ?? (await buildImage(project, { docker, ...(abortSignal ? { abortSignal } : {}) })).tag;
    step = "workspace";
    const dir = sessionDir(home, id);
    const workspace = join(dir, "workspace");
    mkdirSync(join(workspace, ".bulkhead", "jobs"), { recursive: true });
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    // Non-root inside: the host user, or 1000 when the host user is root (files then belong to 1000).
    const uid = process.getuid?.() ?? 1000;
    const gid = process.getgid?.() ?? 1000;
    const user = project.security.user ?? (uid === 0 ? "1000:1000" : `${uid}:${gid}`);
    const branch = `bulkhead/${id}`;
    // The repos are cloned side by side: each clone is mostly checkout, and two cores check out
    // two trees faster than one tree after another.
    const settled = await Promise.allSettled(
      project.repos.map(async (repo): Promise<SessionState["repos"][number]> => {
        throwIfAborted(abortSignal, "createSession");
        if (repo.mode === "mount-ro") {
          return { name: repo.name, mode: repo.mode, source: repo.path, branch, baseSha: await git(repo.path, ["rev-parse", "HEAD"]) };
        }
        try {
          const baseSha = await git(repo.path, ["rev-parse", "--verify", `${repo.ref ?? "HEAD"}^{commit}`]);
          const target = join(workspace, repo.name);
          await git(workspace, ["clone", "--quiet", "--local", "--no-checkout", repo.path, target]);
          await git(target, ["checkout", "--quiet", "-b", branch, baseSha]);
          if (uid === 0) await chownTree(user, target);
          return { name: repo.name, mode: repo.mode, source: repo.path, branch, baseSha };
        } catch (error) {
          throw Object.assign(error as Error, { step: `clone ${repo.name}` });
        }
      }),
    );
    const failed = settled.find((outcome) => outcome.status === "rejected");
    if (failed) {
      const error = (failed as PromiseRejectedResult).reason as Error & { step?: string };
      if (error.step) step = error.step;
      throw error;
    }
    const repos = settled.map((outcome) => (outcome as PromiseFulfilledResult<SessionState["repos"][number]>).value);
    if (uid === 0) await run("chown", [user, workspace, join(workspace, ".bulkhead"), join(workspace, ".bulkhead", "jobs")]);
    const env: Record<string, string> = { ...project.env, HOME: "/tmp" };
    for (const name of project.passEnv) if (process.env[name] !== undefined) env[name] = process.env[name]!;
    throwIfAborted(abortSignal, "createSession");
    step = "container";
    const container = await docker.createContainer(
      containerSpec(project, { tag: image, sessionId: id, workspace, user, granted, env, version: VERSION, home }),
    );
    cleanup.push(() => container.remove({ force: true }));
    throwIfAborted(abortSignal, "createSession");
    step = "start";
    await container.start();
    const state: SessionState = {
      id,
      project: project.name,
      configHash: project.configHash,
      tag: image,
      createdAt: new Date().toISOString(),
      workspace,
      user,
      workdir: `/workspace/${project.workdir ?? project.repos[0]!.name}`,
      env,
      ...(project.agent ? { agent: project.agent } : {}),
      granted,
      repos,
      jobs: [],
    };
    step = "state";
    await writeFileAtomic(join(dir, "state.json"), JSON.stringify(state, null, 2), { mode: 0o600 });
    return new Session(state, docker, home);
  } catch (error) {
    for (const undo of cleanup.reverse()) await undo().catch(() => undefined);
    if (
      error instanceof SessionError ||
      (error as { code?: string }).code === "DEVICE_UNAVAILABLE" ||
      (error as { code?: string }).code === "INVALID_PROJECT" ||
      (error as { code?: string }).code === "ABORTED"
    )
      throw error;
    throw new SessionError(step, (error as Error).message, error);
  }
}

/**
 * Hands a tree to the container's user. Object files are left alone: git never writes to them,
 * and in a `--local` clone they are hard links into the source repository, whose files must keep
 * their owner. Directories (where new objects go) and everything else change owner.
 */
function chownTree(user: string, path: string): Promise<string> {
  return run("find", [path, "!", "(", "-type", "f", "-path", "*/.git/objects/*", ")", "-exec", "chown", "-h", user, "{}", "+"]);
}

/**
 * Uncommitted files of a clone, from plumbing that never reads file content (no clean filter can
 * run): staged changes, files whose stat differs from the index, and untracked files.
 */
async function uncommittedIn(path: string): Promise<string[]> {
  // The host's chown (and the container's uid) changed every file's owner and ctime since the
  // checkout wrote the index: compare size and mtime only. A file changed within the index's own
  // second is "racily clean" to git and compared by content, so no change is missed.
  const stat = ["-c", "core.checkStat=minimal", "-c", "core.trustctime=false"];
  const listed = await Promise.all([
    workspaceGit(path, [...stat, "diff-index", "--cached", "--name-only", "HEAD"]),
    workspaceGit(path, [...stat, "diff-files", "--name-only"]),
    workspaceGit(path, ["ls-files", "--others", "--exclude-standard"]),
  ]);
  return [...new Set(listed.flatMap((text) => text.split("\n").filter(Boolean)))].sort();
}

/**
 * Reads a file the container wrote, at `path` under `root`, never through a link: a directory on
 * the way must resolve inside `root`, the file itself is opened with O_NOFOLLOW (a link is
 * reported, not followed), and the opened descriptor must be that very path (/proc/self/fd), so
 * a swap between the checks and the open is caught. `refuse` throws the caller's error.
 */
function readInside(
  root: string,
  path: string,
  refuse: (reason: string, problem: "outside" | "not-a-file") => never,
): { kind: "file"; content: Buffer } | { kind: "link"; target: string } | { kind: "missing" } {
  const realRoot = realpathSync(root);
  const within = (real: string) => real === realRoot || real.startsWith(`${realRoot}/`);
  const wanted = join(realRoot, path);
  if (!existsSync(dirname(wanted))) return { kind: "missing" };
  const parent = realpathSync(dirname(wanted));
  if (!within(parent)) refuse(`leads outside ${root} through a link`, "outside");
  const candidate = join(parent, basename(wanted));
  let descriptor: number;
  try {
    descriptor = openSync(candidate, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { kind: "missing" };
    if (code === "ELOOP") return { kind: "link", target: readlinkSync(candidate) };
    throw error;
  }
  try {
    if (!fstatSync(descriptor).isFile()) refuse("is not a regular file", "not-a-file");
    let opened = candidate;
    try {
      opened = readlinkSync(`/proc/self/fd/${descriptor}`);
    } catch {
      // No /proc (not Linux): the checks above stand alone.
    }
    if (opened !== candidate) refuse(`leads to ${opened}, outside ${root}`, "outside");
    return { kind: "file", content: readFileSync(descriptor) };
  } finally {
    closeSync(descriptor);
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

/** Reattaches to a session by id, from any process. */
export function getSession(id: string, { docker = new Docker(), home = defaultHome() }: { docker?: Docker; home?: string } = {}): Session {
  // The id often comes from a command line: it names a directory under home, never a path.
  if (typeof id !== "string" || !/^s[a-z0-9]{6,40}$/.test(id))
    throw new InvalidArgumentError("id", `${JSON.stringify(id)} is not a session id (like s1a2b3c4d5e6f7): see bulkhead session list`);
  const path = join(sessionDir(home, id), "state.json");
  if (!existsSync(path)) throw new SessionError("get", `no session "${id}" under ${home}`);
  return new Session(JSON.parse(readFileSync(path, "utf8")) as SessionState, docker, home);
}

/** Sessions on this host, from their state files and their containers' labels. */
export async function listSessions({
  project,
  docker = new Docker(),
  home = defaultHome(),
}: { project?: string; docker?: Docker; home?: string } = {}): Promise<
  { id: string; project: string; createdAt: string; container: string }[]
> {
  const containers = await docker.listContainers({
    all: true,
    filters: { label: [`${LABEL}.session`, `${LABEL}.home=${homeLabel(home)}`] },
  });
  const byId = new Map(containers.map((container) => [container.Labels[`${LABEL}.session`]!, container.State]));
  const dir = join(home, "sessions");
  const ids = existsSync(dir)
    ? readdirSync(dir).filter((name) => existsSync(join(dir, name, "state.json")) && statSync(join(dir, name)).isDirectory())
    : [];
  return ids
    .map((id) => JSON.parse(readFileSync(join(dir, id, "state.json"), "utf8")) as SessionState)
    .filter((state) => !project || state.project === project)
    .map((state) => ({ id: state.id, project: state.project, createdAt: state.createdAt, container: byId.get(state.id) ?? "missing" }))
    .sort((left, right) => left.createdAt.localeCompare(right.createdAt));
}

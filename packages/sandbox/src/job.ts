import { closeSync, existsSync } from "node:fs";
import { join, relative } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { sleep, throwIfAborted, validateOptions } from "@bulkhead/core";
import { z } from "zod";
import { openInside, readAt, readInside } from "./read-inside.js";
import { SessionError } from "./sandbox-errors.js";
import { internalsOf, type Session } from "./session.js";

/** What `job.logs()` returns at most, in all, unless told otherwise: 16 MiB. */
export const MAX_JOB_LOG_BYTES = 16 * 2 ** 20;

/** An exit-code file holds a number: anything longer is not read. */
const MAX_EXIT_FILE_BYTES = 64;

/** Options of `job.wait()`. */
export interface JobWaitOptions {
  /** Stops waiting (the job keeps running: `job.kill()` stops it) and throws `AbortedError`. @default no signal */
  readonly abortSignal?: AbortSignal;
  /** How often the exit file is looked at, in milliseconds. @default 100 */
  readonly pollMs?: number;
}

/** Options of `job.logs()`. */
export interface JobLogsOptions {
  /** Keep reading as the log grows, until the job ends. @default false */
  readonly follow?: boolean;
  /** How often a followed log is looked at, in milliseconds. @default 100 */
  readonly pollMs?: number;
  /** The most bytes returned in all. @default 16 MiB ({@link MAX_JOB_LOG_BYTES}) */
  readonly maxBytes?: number;
  /** Stops following and throws `AbortedError`. @default no signal */
  readonly abortSignal?: AbortSignal;
}

/** Options of `job.kill()`. */
export interface JobKillOptions {
  /** Milliseconds between SIGTERM and SIGKILL; 0 kills at once. @default 2000 */
  readonly graceMs?: number;
}

const pollMs = () => z.number().int().min(1).max(60_000).optional();
const waitOptionsSchema = () => z.strictObject({ abortSignal: z.instanceof(AbortSignal).optional(), pollMs: pollMs() });
const logsOptionsSchema = () =>
  z.strictObject({
    follow: z.boolean().optional(),
    pollMs: pollMs(),
    maxBytes: z.number().int().positive("expected a positive whole number of bytes").optional(),
    abortSignal: z.instanceof(AbortSignal).optional(),
  });
const killOptionsSchema = () => z.strictObject({ graceMs: z.number().int().min(0).optional() });

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

  #refuse(path: string): (reason: string) => never {
    return (reason) => {
      throw new SessionError("job", `${path} ${reason}`);
    };
  }

  /**
   * Reads the job's exit file. The container owns the directory, so the file or a directory above
   * it may be a link it planted to a host file: the final link is refused (O_NOFOLLOW), and the
   * opened file must be the very path under the workspace.
   */
  #readExit(): Buffer | undefined {
    const workspace = this.session.state.workspace;
    const found = readInside(workspace, relative(workspace, this.#exit), this.#refuse(this.#exit), {
      maxBytes: MAX_EXIT_FILE_BYTES,
      tooLarge: (sizeBytes) => {
        throw new SessionError("job", `${this.#exit} is ${sizeBytes} bytes: an exit file holds a number; the job's container wrote it`);
      },
    });
    if (found.kind === "link") throw new SessionError("job", `${this.#exit} is a symbolic link: a job file is never read through a link`);
    return found.kind === "file" ? found.content : undefined;
  }

  /** Up to `maxBytes` of the log from `offset` on, opened as safely as the exit file; empty while it does not exist. */
  #readLog(offset: number, maxBytes: number): Buffer {
    const workspace = this.session.state.workspace;
    const opened = openInside(workspace, relative(workspace, this.#log), this.#refuse(this.#log));
    if (opened.kind === "link") throw new SessionError("job", `${this.#log} is a symbolic link: a job file is never read through a link`);
    if (opened.kind === "missing") return Buffer.alloc(0);
    try {
      // Only what was added since the last read; a log the job truncated has nothing new.
      return opened.sizeBytes <= offset
        ? Buffer.alloc(0)
        : readAt(opened.descriptor, offset, Math.min(maxBytes, opened.sizeBytes - offset));
    } finally {
      closeSync(opened.descriptor);
    }
  }

  /**
   * True when the job can no longer end by itself: its container is not running, or was
   * restarted since the job started (a dockerd restart), so its process is gone.
   */
  async #lost(): Promise<boolean> {
    const record = this.session.state.jobs.find((job) => job.id === this.id);
    const info = await this.session.backend.inspect(this.session.instance).catch(() => undefined);
    const running = info?.state === "running" || info?.state === "paused";
    const lost = !running || (record?.containerStartedAt !== undefined && info?.startedAt !== record.containerStartedAt);
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
   * a SessionError when the job is lost (its container stopped or restarted under it). While it
   * waits, the session's `resources.diskMb` is watched: over it, the job is stopped (exit 137).
   */
  async wait(options: JobWaitOptions = {}): Promise<{ exitCode: number }> {
    const { abortSignal, pollMs = 100 } = validateOptions(waitOptionsSchema(), options, "options");
    const checkEvery = Math.max(1, Math.round(1000 / pollMs));
    const { updateState, watchDisk } = internalsOf(this.session);
    const release = watchDisk();
    try {
      for (let round = 1; ; round++) {
        throwIfAborted(abortSignal, `job ${this.id}`);
        if (round % checkEvery === 0 && (await this.#lost())) {
          await updateState((state) => {
            const record = state.jobs.find((job) => job.id === this.id);
            if (record && record.exitCode === undefined) Object.assign(record, { lost: true, endedAt: new Date().toISOString() });
          });
          throw this.#lostError();
        }
        const exitText = this.#readExit();
        if (exitText !== undefined) {
          const exitCode = Number(exitText.toString("utf8").trim());
          await updateState((state) => {
            const record = state.jobs.find((job) => job.id === this.id);
            if (record && record.exitCode === undefined) Object.assign(record, { exitCode, endedAt: new Date().toISOString() });
          });
          return { exitCode };
        }
        await sleep(pollMs, abortSignal, `job ${this.id}`);
      }
    } finally {
      release();
    }
  }

  /**
   * Stops the job's command and every process it started (its process group, inside the
   * container): SIGTERM, then SIGKILL after `graceMs`; its exit code is then 143 or 137. For an
   * agent a budget stopped, say. Does nothing once the job ended.
   */
  async kill(options: JobKillOptions = {}): Promise<void> {
    const { graceMs = 2000 } = validateOptions(killOptionsSchema(), options, "options");
    if (this.#readExit() !== undefined) return;
    // Just after inject() the job's shell may not have written its pid yet: wait for it (a
    // presence check only; the file is read inside the container).
    const pidOnHost = `${this.#exit}.pid`;
    for (let attempt = 0; attempt < 250 && !existsSync(pidOnHost) && this.#readExit() === undefined; attempt++) await sleep(20);
    await internalsOf(this.session).stopProcess(`/workspace/.bulkhead/jobs/${this.id}.exit.pid`, graceMs);
  }

  /**
   * The job's output so far, or, with `follow`, as it is written until the job ends. The log is
   * read incrementally (only what was added since the last read, in pieces of at most 1 MiB), and
   * at most `maxBytes` in all ({@link MAX_JOB_LOG_BYTES} by default) are returned: past that, one
   * last line says where the full log is, and the generator ends.
   */
  async *logs(options: JobLogsOptions = {}): AsyncGenerator<string> {
    const {
      follow = false,
      pollMs = 100,
      maxBytes = MAX_JOB_LOG_BYTES,
      abortSignal,
    } = validateOptions(logsOptionsSchema(), options, "options");
    throwIfAborted(abortSignal, `logs of job ${this.id}`);
    const checkEvery = Math.max(1, Math.round(1000 / pollMs));
    const chunkBytes = 1 << 20;
    // A character split between two reads is held back until its end arrives.
    const decoder = new StringDecoder("utf8");
    let offset = 0;
    const release = follow ? internalsOf(this.session).watchDisk() : () => undefined;
    try {
      for (let round = 1; ; round++) {
        const ended = this.#readExit() !== undefined || (follow && round % checkEvery === 0 && (await this.#lost()));
        // Everything there is now, piece by piece, before deciding the job ended.
        for (;;) {
          if (offset >= maxBytes) {
            const rest = decoder.end();
            yield `${rest}\n[bulkhead: log output stops at ${maxBytes} bytes; the full log is ${this.#log}]\n`;
            return;
          }
          const piece = this.#readLog(offset, Math.min(chunkBytes, maxBytes - offset));
          if (piece.length === 0) break;
          offset += piece.length;
          const text = decoder.write(piece);
          if (text.length > 0) yield text;
        }
        if (!follow || ended) {
          const rest = decoder.end();
          if (rest.length > 0) yield rest;
          return;
        }
        await sleep(pollMs, abortSignal, `logs of job ${this.id}`);
      }
    } finally {
      release();
    }
  }
}

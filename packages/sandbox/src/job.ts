import { existsSync } from "node:fs";
import { join, relative } from "node:path";
import { throwIfAborted } from "@bulkhead/core";
import { readInside } from "./read-inside.js";
import { SessionError } from "./sandbox-errors.js";
import type { Session } from "./session.js";

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

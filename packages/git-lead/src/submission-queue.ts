import {
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomicSync } from "@bulkhead/core";
import type { QueueEntry, SubmitResult } from "./submission.js";

/**
 * The lead's durable queue in `<gitdir>/bulkhead`: one file per queued submission (`queue/`),
 * one per outcome (`results/`). Any process may queue; only the lead removes an entry, after its
 * outcome is written.
 */
export class SubmissionQueue {
  constructor(readonly stateDir: string) {}

  /** Queues an entry, flushed to disk. An entry already queued under this id (a retry) is kept as it is. */
  add(entry: QueueEntry): void {
    const queueDir = join(this.stateDir, "queue");
    mkdirSync(queueDir, { recursive: true });
    const staged = join(queueDir, `${entry.id}.json.tmp-${process.pid}`);
    try {
      const descriptor = openSync(staged, "w");
      try {
        writeSync(descriptor, JSON.stringify(entry));
        fsyncSync(descriptor);
      } finally {
        closeSync(descriptor);
      }
      // Link, not rename: a retry must not replace the entry a lead may be working on.
      try {
        linkSync(staged, join(queueDir, `${entry.id}.json`));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
    } finally {
      rmSync(staged, { force: true });
    }
  }

  /**
   * The queued entries, oldest first. A lead drops an entry torn by a crash before its link;
   * `readOnly` (status) only skips it, so looking changes nothing.
   */
  list({ readOnly = false } = {}): QueueEntry[] {
    const dir = join(this.stateDir, "queue");
    let names: string[];
    try {
      names = readdirSync(dir).filter((name) => name.endsWith(".json"));
    } catch {
      return [];
    }
    const entries: QueueEntry[] = [];
    for (const name of names) {
      try {
        entries.push(JSON.parse(readFileSync(join(dir, name), "utf8")) as QueueEntry);
      } catch (error) {
        // Gone meanwhile (finished by another lead), or torn by a crash before its link: skip or drop.
        if ((error as NodeJS.ErrnoException).code !== "ENOENT" && !readOnly) rmSync(join(dir, name), { force: true });
      }
    }
    return entries.sort((left, right) => (left.queuedAt < right.queuedAt ? -1 : left.queuedAt > right.queuedAt ? 1 : 0));
  }

  remove(id: string): void {
    rmSync(join(this.stateDir, "queue", `${id}.json`), { force: true });
    rmSync(join(this.stateDir, "queue", `${id}.withdrawn`), { force: true });
  }

  /**
   * Marks a queued entry as withdrawn by its submitter (an abort while another lead works): the
   * lead that reaches it refuses it instead of committing, unless its commit is already under way.
   */
  withdraw(id: string): void {
    if (!existsSync(join(this.stateDir, "queue", `${id}.json`))) return;
    writeFileSync(join(this.stateDir, "queue", `${id}.withdrawn`), "");
  }

  isWithdrawn(id: string): boolean {
    return existsSync(join(this.stateDir, "queue", `${id}.withdrawn`));
  }

  result(id: string): SubmitResult | undefined {
    try {
      return JSON.parse(readFileSync(join(this.stateDir, "results", `${id}.json`), "utf8")) as SubmitResult;
    } catch {
      return undefined;
    }
  }

  /** The outcome, replaced atomically; the journal, not this file, is the record. */
  writeResult(result: SubmitResult): void {
    writeFileAtomicSync(join(this.stateDir, "results", `${result.id}.json`), JSON.stringify(result));
  }

  async resultIds(): Promise<string[]> {
    const names = await readdir(join(this.stateDir, "results")).catch(() => [] as string[]);
    return names.filter((name) => name.endsWith(".json")).map((name) => name.replace(/\.json$/, ""));
  }
}

import { appendFileSync, fdatasyncSync } from "node:fs";
import { mkdir, open, readFile, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";

/** The lead's append-only audit and recovery trail: intent before the ref moves, the outcome after. */
export type JournalEntry =
  | {
      type: "intent";
      id: string;
      issueId: string;
      worker: string;
      parent: string | undefined;
      commit: string;
      paths: string[];
      fence: number;
      /** The remote the commit is pushed to, when the lead lands on a shared remote. */
      remote?: string;
      at: string;
      gates: { name: string; ok: boolean; output: string }[];
    }
  | { type: "committed"; id: string; issueId: string; sha: string; at: string }
  /** The remote accepted the intent's commit (a lead landing on a shared remote); `committed` follows. */
  | { type: "pushed"; id: string; commit: string; remote: string; at: string }
  | { type: "aborted"; id: string; reason: string; at: string }
  /** A submission refused before any commit: a failed gate (with its output as evidence), a bad path, a repeat. */
  | {
      type: "rejected";
      id: string;
      issueId: string;
      reason: string;
      at: string;
      gates: { name: string; ok: boolean; output: string }[];
      /** The submitter aborted: a refusal that says nothing about the change. */
      aborted?: true;
    };

export class Journal {
  #handle: Promise<FileHandle> | undefined;

  constructor(readonly path: string) {}

  async read(): Promise<JournalEntry[]> {
    const text = await readFile(this.path, "utf8").catch((error: NodeJS.ErrnoException) =>
      error.code === "ENOENT" ? "" : Promise.reject(error),
    );
    const entries: JournalEntry[] = [];
    for (const line of text.split("\n")) {
      if (line === "") continue;
      try {
        entries.push(JSON.parse(line) as JournalEntry);
      } catch {
        // A line torn by a crash: the entry it began never completed, and recovery treats it so.
      }
    }
    return entries;
  }

  /** Appends and flushes one entry. */
  async append(entry: JournalEntry): Promise<void> {
    this.#handle ??= (async () => {
      await mkdir(dirname(this.path), { recursive: true });
      const handle = await open(this.path, "a+");
      const { size } = await handle.stat();
      const last = Buffer.alloc(1);
      // A crash may have cut the last line short: start on a fresh line so the next entry stands alone.
      if (size > 0 && (await handle.read(last, 0, 1, size - 1)).bytesRead === 1 && last[0] !== 0x0a) await handle.appendFile("\n");
      return handle;
    })();
    const handle = await this.#handle;
    // Synchronous on purpose: two tiny syscalls cost far less than two trips through the thread pool.
    appendFileSync(handle.fd, `${JSON.stringify(entry)}\n`);
    fdatasyncSync(handle.fd);
  }

  async close(): Promise<void> {
    if (this.#handle) await (await this.#handle).close();
    this.#handle = undefined;
  }
}

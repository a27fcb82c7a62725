import module, { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { AbortedError } from "@bulkhead/core";
import { createRankedPieceCounter, createSharedPieceTable, createTextCounter } from "./create-text-counter.js";
import type { Encoding } from "./encodings.js";

const require = createRequire(import.meta.url);

/** Counts batches of texts on worker threads, one gpt-tokenizer per thread. */
export interface TokenCountPool {
  readonly threads: number;
  /** Counts texts; those given as UTF-8 bytes are copied into one buffer that moves to the thread, and decoded there. */
  count(texts: readonly (string | Uint8Array)[], abortSignal?: AbortSignal): Promise<number[]>;
  /** Ends the threads once no counter holds the pool. */
  release(): void;
}

interface Slot {
  worker: Worker;
  busy: number;
}

interface Pending {
  resolve(counts: number[]): void;
  reject(error: Error): void;
  slot: Slot;
}

/**
 * The worker's program. It is evaluated as CommonJS, so it loads gpt-tokenizer's CommonJS build
 * by absolute path and rebuilds {@link createTextCounter} from its source: the threads count
 * with exactly the code the main thread counts with, whether bulkhead runs built or from source.
 */
function workerSource(): string {
  return `
    var __name = (target) => target;
    const { parentPort, workerData } = require("node:worker_threads");
    // The main thread's V8 code cache, when it has one: the rank table compiles once, not per thread.
    if (workerData.compileCacheDir) require("node:module").enableCompileCache?.(workerData.compileCacheDir);
    const splitRegex = workerData.constantsPath ? require(workerData.constantsPath).O200K_TOKEN_SPLIT_REGEX : undefined;
    const options = { disallowedSpecial: new Set() };
    // o200k: pieces merged with the rank table itself; other encodings: gpt-tokenizer counts whole texts.
    const countPiece = splitRegex
      ? (${createRankedPieceCounter.toString()})(require(workerData.ranksPath).default)
      : ((encoding) => (text) => encoding.countTokens(text, options))(require(workerData.encodingPath));
    // One piece table for all the threads (o200k): each distinct piece is merged once in all.
    const count = (${createTextCounter.toString()})(countPiece, splitRegex, undefined, workerData.pieces);
    // ignoreBOM keeps a leading byte order mark as text, as Buffer.toString("utf8") does.
    const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
    parentPort.on("message", ({ id, texts, bytes, ends }) => {
      try {
        const counts = [];
        if (texts) for (const text of texts) counts.push(count(text));
        else for (let index = 0, start = 0; index < ends.length; start = ends[index++]) counts.push(count(decoder.decode(bytes.subarray(start, ends[index]))));
        parentPort.postMessage({ id, counts });
      } catch (error) {
        parentPort.postMessage({ id, error: String(error && error.stack || error) });
      }
    });
  `;
}

const pools = new Map<Encoding, { pool: TokenCountPool; holders: number }>();

/** The process's pool for an encoding, started on first use; {@link TokenCountPool.release} when done. */
export function acquireTokenCountPool(encoding: Encoding): TokenCountPool {
  let entry = pools.get(encoding);
  if (!entry) {
    const created = createPool(encoding, () => pools.delete(encoding));
    entry = { pool: created, holders: 0 };
    pools.set(encoding, entry);
  }
  entry.holders++;
  const held = entry;
  let released = false;
  return {
    threads: held.pool.threads,
    count: (texts, abortSignal) => held.pool.count(texts, abortSignal),
    release() {
      if (released) return;
      released = true;
      if (--held.holders === 0) held.pool.release();
    },
  };
}

function createPool(encoding: Encoding, onEnd: () => void): TokenCountPool {
  // One thread per core: the thread that walks and reads is mostly waiting on the file system.
  const threads = Math.max(1, availableParallelism());
  const workerData = {
    compileCacheDir: (module as { getCompileCacheDir?: () => string | undefined }).getCompileCacheDir?.(),
    // o200k counts pieces with the rank table; other encodings count whole texts with gpt-tokenizer.
    encodingPath: encoding === "o200k_base" ? undefined : require.resolve(`gpt-tokenizer/cjs/encoding/${encoding}`),
    constantsPath: encoding === "o200k_base" ? require.resolve("gpt-tokenizer/cjs/encodingParams/constants") : undefined,
    ranksPath: encoding === "o200k_base" ? require.resolve("gpt-tokenizer/cjs/bpeRanks/o200k_base") : undefined,
    pieces: encoding === "o200k_base" ? createSharedPieceTable() : undefined,
  };
  const slots: Slot[] = [];
  const pending = new Map<number, Pending>();
  let nextId = 0;
  let ended = false;

  const fail = (slot: Slot, error: Error) => {
    for (const [id, entry] of pending) {
      if (entry.slot !== slot) continue;
      pending.delete(id);
      entry.reject(error);
    }
    const index = slots.indexOf(slot);
    if (index >= 0) slots.splice(index, 1);
  };

  const start = (): Slot => {
    const worker = new Worker(workerSource(), { eval: true, workerData });
    const slot: Slot = { worker, busy: 0 };
    // An idle pool never keeps the process alive; a busy one does until its answers arrive.
    worker.unref();
    worker.on("message", (message: { id: number; counts?: number[]; error?: string }) => {
      const entry = pending.get(message.id);
      if (!entry) return;
      pending.delete(message.id);
      if (--slot.busy === 0) worker.unref();
      if (message.counts) entry.resolve(message.counts);
      else entry.reject(new Error(`token counting thread failed: ${message.error}`));
    });
    worker.on("error", (error) => fail(slot, error));
    worker.on("exit", (code) => fail(slot, new Error(`token counting thread exited with code ${code}`)));
    slots.push(slot);
    return slot;
  };

  return {
    threads,
    count(texts, abortSignal) {
      if (ended) return Promise.reject(new Error("token counting pool released"));
      if (abortSignal?.aborted) return Promise.reject(new AbortedError("countMany", abortSignal.reason));
      const slot = slots.length < threads ? start() : slots.reduce((least, candidate) => (candidate.busy < least.busy ? candidate : least));
      if (slot.busy === 0) slot.worker.ref();
      slot.busy++;
      const id = nextId++;
      return new Promise<number[]>((resolve, reject) => {
        pending.set(id, { resolve, reject, slot });
        if (texts.every((text) => typeof text === "string")) {
          slot.worker.postMessage({ id, texts });
          return;
        }
        // Bytes: one copy into a buffer the thread takes over (no decoding, no cloning here).
        let total = 0;
        for (const text of texts) total += typeof text === "string" ? Buffer.byteLength(text) : text.byteLength;
        const bytes = new Uint8Array(total);
        const ends = new Uint32Array(texts.length);
        let offset = 0;
        texts.forEach((text, index) => {
          const encoded = typeof text === "string" ? Buffer.from(text, "utf8") : text;
          bytes.set(encoded, offset);
          offset += encoded.byteLength;
          ends[index] = offset;
        });
        slot.worker.postMessage({ id, bytes, ends }, [bytes.buffer, ends.buffer]);
      });
    },
    release() {
      if (ended) return;
      ended = true;
      onEnd();
      for (const slot of slots.splice(0)) void slot.worker.terminate();
    },
  };
}

import { mkdir, open, readFile, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { InvalidArgumentError, lazySchema, type Usage, validateOptions, withFileLock } from "@bulkhead/core";
import { z } from "zod";
import type { BudgetKind } from "./budget-kinds.js";

/** One durable fact. Budgets replay `settle`, `charge` and `extend`; trackers replay `usage`. */
export type LedgerEvent =
  | {
      type: "settle" | "charge";
      at: number;
      chain: string[];
      amounts: Partial<Record<BudgetKind, number>>;
      lease?: string;
      /** The model of a usage booked without a price: a usd limit fails closed after it. */
      unpriced?: string;
      /** Set by `bookUnpriced`: the unknown dollars are booked, the usd limit opens again. */
      resolvesUnpriced?: boolean;
    }
  | { type: "extend"; at: number; budget: string; kind: BudgetKind; amount: number; approvedBy: string; reason?: string }
  | { type: "usage"; at: number; task: string; repo: string; operation: string; model?: string; usage: Usage; usd?: number };

/** What replay found: the events, and the lines it had to skip (counted, never silent). */
export interface LedgerContents {
  events: LedgerEvent[];
  /** A last line cut short by a crash; ignored. */
  tornTail: boolean;
  /** Lines in the middle that are not valid events; skipped and counted. */
  corruptLines: number;
}

/** How to restore a budget or a tracker from a ledger. */
export interface RestoreOptions {
  ledger: Ledger;
  /** Called when replay skipped lines: corrupt ones in the middle, or a torn last line. */
  onSkipped?: (skipped: { corruptLines: number; tornTail: boolean }) => void;
}

/** An append-only log of budget and usage events. */
export interface Ledger {
  /** Queues an event; it is durable once `flush()` resolves. */
  append(event: LedgerEvent): void;
  /** Writes and fsyncs everything queued. */
  flush(): Promise<void>;
  /** Every event written so far (after a flush), in order. */
  read(): Promise<LedgerContents>;
  /** Flushes and closes. Idempotent. */
  close(): Promise<void>;
  /** Calls `close()`, so `await using ledger = createFileLedger({ path })` flushes and closes at scope end. */
  [Symbol.asyncDispose](): Promise<void>;
}

const fileLedgerSchema = lazySchema(() =>
  z.object({
    path: z.string({ error: "expected the ledger file's path" }).min(1, "expected the ledger file's path"),
    maxBatch: z.number().int().positive().optional(),
    flushIntervalMs: z.number().nonnegative().optional(),
  }),
);

/** A ledger in memory, for tests and one-shot scripts. */
export function createMemoryLedger(): Ledger {
  const events: LedgerEvent[] = [];
  return {
    append: (event) => void events.push(structuredClone(event)),
    flush: async () => {},
    read: async () => ({ events: events.map((event) => structuredClone(event)), tornTail: false, corruptLines: 0 }),
    close: async () => {},
    [Symbol.asyncDispose]: async () => {},
  };
}

/** The options of {@link createFileLedger}. */
export interface FileLedgerOptions {
  /** The ledger file (JSON lines); its directory is created on the first write. */
  path: string;
  /** Most events per write and fsync. @default 4096 */
  maxBatch?: number;
  /** How long an event may wait for its batch, in ms. @default 5 */
  flushIntervalMs?: number;
}

const isAmounts = (value: unknown): boolean =>
  typeof value === "object" &&
  value !== null &&
  Object.values(value).every((amount) => typeof amount === "number" && Number.isFinite(amount));
const isTokenCount = (value: unknown): boolean => typeof value === "number" && value >= 0 && Number.isFinite(value);

/** A line is an event only when replay can use it as one: a malformed line is counted, never half-applied. */
function isEvent(value: unknown): value is LedgerEvent {
  if (typeof value !== "object" || value === null) return false;
  const event = value as Record<string, unknown>;
  if (typeof event.at !== "number") return false;
  switch (event.type) {
    case "settle":
    case "charge":
      return (
        Array.isArray(event.chain) &&
        event.chain.length > 0 &&
        event.chain.every((id) => typeof id === "string") &&
        isAmounts(event.amounts)
      );
    case "extend":
      return (
        typeof event.budget === "string" &&
        typeof event.kind === "string" &&
        typeof event.amount === "number" &&
        event.amount > 0 &&
        typeof event.approvedBy === "string"
      );
    case "usage": {
      const usage = event.usage as Record<string, unknown> | null;
      return (
        typeof event.task === "string" &&
        typeof event.repo === "string" &&
        typeof event.operation === "string" &&
        typeof usage === "object" &&
        usage !== null &&
        isTokenCount(usage.inputTokens) &&
        isTokenCount(usage.outputTokens)
      );
    }
    default:
      return false;
  }
}

/** Parses JSONL: a torn last line is ignored, corrupt middle lines are counted and skipped. */
export function parseLedger(text: string): LedgerContents {
  const lines = text.split("\n");
  const complete = text.endsWith("\n");
  const last = lines.pop() ?? "";
  const contents: LedgerContents = { events: [], tornTail: !complete && last !== "", corruptLines: 0 };
  for (const line of lines) {
    if (line === "") continue;
    try {
      const event = JSON.parse(line) as unknown;
      if (isEvent(event)) contents.events.push(event);
      else contents.corruptLines++;
    } catch {
      contents.corruptLines++;
    }
  }
  return contents;
}

/**
 * A durable JSONL ledger: events are batched, each batch is one append and one fsync, taken
 * under a lock beside the file so several processes on one host can share it. Replay ignores a
 * torn last line (a crash mid-write) and counts corrupt lines.
 *
 * @example
 * const ledger = createFileLedger({ path: ".bulkhead/ledger.jsonl" });
 * const budget = createBudget({ limits: { sessionTotal: 100_000 }, ledger });
 */
export function createFileLedger(options: FileLedgerOptions): Ledger {
  const { path, maxBatch = 4096, flushIntervalMs = 5 } = validateOptions(fileLedgerSchema(), options, "options");
  let queue: string[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let writing: Promise<void> = Promise.resolve();
  let handle: Promise<FileHandle> | undefined;
  let closed = false;

  const write = async (lines: string[]) => {
    handle ??= mkdir(dirname(path), { recursive: true }).then(() => open(path, "a+"));
    const file = await handle;
    const text = lines.join("");
    await withFileLock(`${path}.lock`, async () => {
      // A writer that crashed mid-line left a torn tail: start on a new line, so the fragment
      // stays one corrupt line (counted on replay) instead of swallowing this batch's first event.
      const { size } = await file.stat();
      let prefix = "";
      if (size > 0) {
        const last = Buffer.alloc(1);
        await file.read(last, 0, 1, size - 1);
        if (last[0] !== 0x0a) prefix = "\n";
      }
      await file.appendFile(prefix + text);
      await file.datasync();
    });
  };
  const flush = (): Promise<void> => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (queue.length > 0) {
      const batch = queue;
      queue = [];
      writing = writing.then(() => write(batch));
    }
    return writing;
  };
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await flush();
    if (handle) await (await handle).close();
  };
  return {
    append(event) {
      if (closed) throw new InvalidArgumentError("ledger", `ledger ${path} is closed`);
      queue.push(`${JSON.stringify(event)}\n`);
      if (queue.length >= maxBatch) void flush().catch(() => undefined);
      else timer ??= setTimeout(() => void flush().catch(() => undefined), flushIntervalMs);
    },
    flush,
    async read() {
      await flush();
      const text = await readFile(path, "utf8").catch((error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT") return "";
        throw error;
      });
      return parseLedger(text);
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { InvalidArgumentError, type TokenCounter } from "@bulkhead/core";
import { z } from "zod";
import { createRankedPieceCounter, createTextCounter, type CountText } from "./create-text-counter.js";
import { CLAUDE_UPPER_BOUND_MARGIN, claudeFactor, ENCODINGS, knownModelFamilies, openAiEncoding, type Encoding } from "./encodings.js";
import { acquireTokenCountPool, type TokenCountPool } from "./token-count-pool.js";
import { UnknownModelError } from "./unknown-model-error.js";

interface Encoder {
  encode_ordinary(text: string): Uint32Array;
  free(): void;
}

/** One encoder per encoding for the whole process, freed when the last counter using it is disposed. */
const encoders = new Map<Encoding, { encoder: Encoder; holders: number }>();
const require = createRequire(import.meta.url);

function acquire(encoding: Encoding): Encoder {
  let entry = encoders.get(encoding);
  if (!entry) {
    // Loaded on first use: the WASM module and its rank table cost ~0.3 s and ~60 MB.
    const { get_encoding } = require("tiktoken") as { get_encoding(name: Encoding): Encoder };
    entry = { encoder: get_encoding(encoding), holders: 0 };
    encoders.set(encoding, entry);
  }
  entry.holders++;
  return entry.encoder;
}

function releaseEncoder(encoding: Encoding): void {
  const entry = encoders.get(encoding);
  if (!entry || --entry.holders > 0) return;
  entry.encoder.free();
  encoders.delete(encoding);
}

/** The tokenizers a counter can count with; both give tiktoken's `encode_ordinary` counts. */
export const TOKENIZER_ENGINES = ["gpt-tokenizer", "tiktoken"] as const;
export type TokenizerEngine = (typeof TOKENIZER_ENGINES)[number];

/** A text given as its UTF-8 bytes, decoded the way `Buffer.toString("utf8")` decodes a file. */
const decodeText = (text: string | Uint8Array): string =>
  typeof text === "string" ? text : Buffer.from(text.buffer, text.byteOffset, text.byteLength).toString("utf8");

/** One gpt-tokenizer text counter per encoding for the whole process (its rank table is ~40 MB). */
const textCounters = new Map<Encoding, CountText>();

function gptTokenizerCounter(encoding: Encoding): CountText {
  let counter = textCounters.get(encoding);
  if (!counter) {
    // Special tokens such as <|endoftext|> in a file are ordinary text, as in encode_ordinary.
    if (encoding === "o200k_base") {
      // The pieces are split here and merged with the rank table itself, as tiktoken does.
      const { O200K_TOKEN_SPLIT_REGEX } = require("gpt-tokenizer/cjs/encodingParams/constants") as { O200K_TOKEN_SPLIT_REGEX: RegExp };
      const ranks = (require("gpt-tokenizer/cjs/bpeRanks/o200k_base") as { default: (string | number[])[] }).default;
      counter = createTextCounter(createRankedPieceCounter(ranks), O200K_TOKEN_SPLIT_REGEX);
    } else {
      const options = { disallowedSpecial: new Set<string>() };
      const loaded = require(`gpt-tokenizer/cjs/encoding/${encoding}`) as { countTokens(text: string, options: object): number };
      counter = (text) => loaded.countTokens(text, options);
    }
    textCounters.set(encoding, counter);
  }
  return counter;
}

/** Below this many characters in one `countMany` call, counting inline beats starting threads. */
const PARALLEL_MIN_CHARS = 512 * 1024;

/** A count, its upper bound, and whether it is exact or an estimate. */
export interface TokenCount {
  tokens: number;
  /** Equal to `tokens` for exact counts; a safe ceiling for estimates (use it to reserve). */
  upperBound: number;
  method: "exact" | "estimate";
}

/** A chat message to count. Non-text parts (images, files) are not counted; see `uncountedParts`. */
export interface ChatMessage {
  role: string;
  content: string | readonly ({ type: "text"; text: string } | { type: string; [key: string]: unknown })[];
  name?: string;
}

/** A tool definition to count: its name, description and JSON Schema. */
export interface ToolDefinition {
  name: string;
  description?: string;
  parameters?: unknown;
  inputSchema?: unknown;
  input_schema?: unknown;
}

/**
 * Framing overhead used for chat messages, from OpenAI's published counting recipe for its chat
 * models: 3 tokens per message, 1 more when it has a `name`, and 3 to prime the reply. Tool
 * definitions cost their name, description and schema JSON plus 8 tokens each. Both are
 * approximations for other providers.
 */
export const MESSAGE_FRAMING = { perMessage: 3, perName: 1, replyPriming: 3, perTool: 8 } as const;

/** A {@link TokenCounter} (gpt-tokenizer or tiktoken) with exact or estimated counts, a cache and calibration. */
export interface BudgetTokenCounter extends TokenCounter, Disposable {
  /** The encoding counted with. */
  readonly encoding: Encoding;
  /** The model this counter was made for, if any. */
  readonly model: string | undefined;
  /** The tokenizer counting: gpt-tokenizer (default) or tiktoken; the counts are the same. */
  readonly engine: TokenizerEngine;
  /** Counts text (an estimate for Claude models). */
  count(text: string): number;
  /**
   * Counts many texts, in order, as {@link BudgetTokenCounter.count} would. With gpt-tokenizer
   * and enough text, the work is spread over one worker thread per core.
   */
  countMany(texts: readonly string[], options?: { abortSignal?: AbortSignal }): Promise<number[]>;
  /** {@link BudgetTokenCounter.countMany} for UTF-8 bytes, decoded on the thread that counts them. */
  countManyBytes(texts: readonly Uint8Array[], options?: { abortSignal?: AbortSignal }): Promise<number[]>;
  /** Counts text and says how sure the count is. */
  countWithBound(text: string): TokenCount;
  /** Counts chat messages with {@link MESSAGE_FRAMING}. */
  countMessages(messages: readonly ChatMessage[]): TokenCount & { uncountedParts: number };
  /** Counts tool definitions with {@link MESSAGE_FRAMING}. */
  countTools(tools: readonly ToolDefinition[]): TokenCount;
  /**
   * Learns a Claude model's factor from reported usage: `estimated` is what this counter said,
   * `actual` what the provider billed for the same input.
   */
  calibrate(model: string, estimated: number, actual: number): { factor: number; margin: number };
  /** Cache statistics. */
  readonly cache: { hits: number; misses: number; size: number };
  /** Frees the encoder when no other counter uses it. Idempotent. */
  dispose(): void;
}

export type CreateTokenCounterOptions = ({ encoding: Encoding; model?: never } | { model: string; encoding?: never }) & {
  /** Texts cached by content hash. @default 10_000 */
  cacheSize?: number;
  /** The tokenizer: gpt-tokenizer (pure JS, threads for batches) or tiktoken (WASM). @default "gpt-tokenizer" */
  engine?: TokenizerEngine;
};

const common = { cacheSize: z.number().int().nonnegative().optional(), engine: z.enum(TOKENIZER_ENGINES).optional() };
const optionsSchema = z.union([
  z.object({ encoding: z.enum(ENCODINGS), ...common }).strict(),
  z.object({ model: z.string().min(1), ...common }).strict(),
]);

/** Texts shorter than this are counted directly: hashing them costs about as much as counting. */
const CACHE_MIN_CHARS = 64;

/**
 * Creates a token counter. By default it counts with gpt-tokenizer (pure JS, loaded on first use,
 * shared per encoding; `countMany` spreads large batches over one worker thread per core);
 * `engine: "tiktoken"` counts with tiktoken's WASM instead (freed when the last counter is
 * disposed). Both count special tokens as ordinary text and give the same numbers. With `{ model }`, OpenAI models map to their
 * encoding; Claude models are counted with o200k_base times a per-model factor and marked
 * estimates with an upper bound.
 *
 * @example
 * using counter = createTokenCounter({ model: "gpt-4o" });
 * counter.count("hello world"); // 2
 * createTokenCounter({ model: "claude-sonnet-4-5" }).countWithBound(text); // { tokens, upperBound, method: "estimate" }
 */
export function createTokenCounter(options: CreateTokenCounterOptions): BudgetTokenCounter {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new InvalidArgumentError(
      "options",
      `expected { encoding: ${ENCODINGS.map((name) => `"${name}"`).join(" | ")} } or { model: string }, optionally engine: ${TOKENIZER_ENGINES.map((name) => `"${name}"`).join(" | ")}, got ${JSON.stringify(options)}`,
    );
  }
  const cacheSize = parsed.data.cacheSize ?? 10_000;
  const engine = parsed.data.engine ?? "gpt-tokenizer";
  const model = "model" in parsed.data ? parsed.data.model : undefined;
  let encoding: Encoding;
  let factor: number | undefined;
  if ("encoding" in parsed.data) encoding = parsed.data.encoding;
  else {
    const openAi = openAiEncoding(parsed.data.model);
    factor = openAi ? undefined : claudeFactor(parsed.data.model);
    if (!openAi && factor === undefined) throw new UnknownModelError(parsed.data.model, "tokenizer", knownModelFamilies());
    encoding = openAi ?? "o200k_base";
  }

  let encoder: Encoder | undefined;
  let textCounter: CountText | undefined;
  let pool: TokenCountPool | undefined;
  let disposed = false;
  const cache = new Map<string, number>();
  const stats = { hits: 0, misses: 0 };
  const calibrations = new Map<string, { factor: number; margin: number }>();
  const margin = () => (model && calibrations.get(model)?.margin) || CLAUDE_UPPER_BOUND_MARGIN;
  const currentFactor = () => (model && calibrations.get(model)?.factor) || factor;

  const assertUsable = () => {
    if (disposed) throw new InvalidArgumentError("counter", "this counter was disposed: create a new one");
  };
  const raw = (text: string): number => {
    assertUsable();
    if (engine === "gpt-tokenizer") return (textCounter ??= gptTokenizerCounter(encoding))(text);
    encoder ??= acquire(encoding);
    return encoder.encode_ordinary(text).length;
  };
  const exact = (text: string): number => {
    if (typeof text !== "string") throw new InvalidArgumentError("text", `expected a string, got ${typeof text}`);
    if (text.length < CACHE_MIN_CHARS || cacheSize === 0) return raw(text);
    const key = createHash("sha1").update(text).digest("base64");
    const cached = cache.get(key);
    if (cached !== undefined) {
      stats.hits++;
      return cached;
    }
    stats.misses++;
    const tokens = raw(text);
    cache.set(key, tokens);
    if (cache.size > cacheSize) cache.delete(cache.keys().next().value as string);
    return tokens;
  };
  const bounded = (tokens: number): TokenCount => {
    const multiplier = currentFactor();
    if (multiplier === undefined) return { tokens, upperBound: tokens, method: "exact" };
    const estimate = Math.ceil(tokens * multiplier);
    return { tokens: estimate, upperBound: Math.ceil(estimate * margin()), method: "estimate" };
  };

  const countBatch = async <T extends string | Uint8Array>(
    texts: readonly T[],
    kind: "string" | "bytes",
    { abortSignal }: { abortSignal?: AbortSignal } = {},
  ): Promise<number[]> => {
    assertUsable();
    if (!Array.isArray(texts) || texts.some((text) => (kind === "string" ? typeof text !== "string" : !(text instanceof Uint8Array))))
      throw new InvalidArgumentError(
        "texts",
        kind === "string" ? "expected an array of strings" : "expected an array of Uint8Array (UTF-8 bytes)",
      );
    let size = 0;
    for (const text of texts) size += text.length;
    // Small batches are counted inline, unless the threads are running already (then the tail
    // of a large job goes to them too, and this thread never loads a tokenizer of its own).
    if (engine !== "gpt-tokenizer" || (size < PARALLEL_MIN_CHARS && !pool))
      return texts.map((text) => bounded(raw(decodeText(text))).tokens);
    pool ??= acquireTokenCountPool(encoding);
    const counts = await pool.count(texts, abortSignal);
    return counts.map((tokens) => bounded(tokens).tokens);
  };

  const counter: BudgetTokenCounter = {
    name: factor === undefined ? encoding : `${encoding}×${model}`,
    get estimated() {
      return currentFactor() !== undefined;
    },
    encoding,
    model,
    engine,
    count: (text) => bounded(exact(text)).tokens,
    countMany: (texts, options) => countBatch(texts, "string", options),
    countManyBytes: (texts, options) => countBatch(texts, "bytes", options),
    countWithBound: (text) => bounded(exact(text)),
    countMessages(messages) {
      let tokens = MESSAGE_FRAMING.replyPriming;
      let uncountedParts = 0;
      for (const message of messages) {
        tokens += MESSAGE_FRAMING.perMessage + exact(message.role);
        if (message.name) tokens += MESSAGE_FRAMING.perName + exact(message.name);
        if (typeof message.content === "string") tokens += exact(message.content);
        else
          for (const part of message.content) {
            if (part.type === "text" && typeof part.text === "string") tokens += exact(part.text);
            else uncountedParts++;
          }
      }
      return { ...bounded(tokens), uncountedParts };
    },
    countTools(tools) {
      let tokens = 0;
      for (const tool of tools) {
        tokens += MESSAGE_FRAMING.perTool + exact(tool.name) + exact(tool.description ?? "");
        tokens += exact(JSON.stringify(tool.parameters ?? tool.inputSchema ?? tool.input_schema ?? {}));
      }
      return bounded(tokens);
    },
    calibrate(calibratedModel, estimated, actual) {
      if (!(estimated > 0) || !(actual > 0))
        throw new InvalidArgumentError("calibrate", `expected positive token counts, got estimated ${estimated} and actual ${actual}`);
      const base = calibrations.get(calibratedModel) ?? { factor: claudeFactor(calibratedModel) ?? 1, margin: CLAUDE_UPPER_BOUND_MARGIN };
      const ratio = actual / estimated;
      // Exponential moving average of the correction; the margin follows the error seen.
      const next = {
        factor: base.factor * (1 + 0.5 * (ratio - 1)),
        margin: Math.max(1.05, 0.7 * base.margin + 0.3 * (1 + 2 * Math.abs(ratio - 1))),
      };
      calibrations.set(calibratedModel, next);
      return next;
    },
    get cache() {
      return { ...stats, size: cache.size };
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      cache.clear();
      if (encoder) releaseEncoder(encoding);
      encoder = undefined;
      pool?.release();
      pool = undefined;
    },
    [Symbol.dispose]() {
      counter.dispose();
    },
  };
  return counter;
}

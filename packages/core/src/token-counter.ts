/**
 * Counts tokens in text. `@bulkhead/budget` implements it with gpt-tokenizer or tiktoken; core
 * ships only the byte-based estimate below, so core stays free of a tokenizer.
 */
export interface TokenCounter {
  /** A stable name for the encoding, part of every cache key (`o200k_base`, `bytes/4`). */
  readonly name: string;
  /** True when counts are an estimate rather than the model's exact tokenization. */
  readonly estimated: boolean;
  /** The number of tokens in `text`. */
  count(text: string): number | Promise<number>;
  /**
   * Counts many texts, in order, as `count` would. Optional: a counter that can spread the work
   * (over worker threads, say) implements it, and `resolveScope` then counts in batches.
   */
  countMany?(texts: readonly string[], options?: { abortSignal?: AbortSignal }): Promise<number[]>;
  /**
   * {@link TokenCounter.countMany} for texts given as their UTF-8 bytes (files as read, decoded as
   * `buffer.toString("utf8")` decodes them), so a counter that counts on other threads can hand
   * them over without decoding and copying them here. `resolveScope` prefers it when present.
   */
  countManyBytes?(texts: readonly Uint8Array[], options?: { abortSignal?: AbortSignal }): Promise<number[]>;
}

/** Bytes per token of the fallback estimate: a common figure for English text and code. */
export const ESTIMATE_BYTES_PER_TOKEN = 4;

/**
 * The counter used when none is given: `ceil(utf8Bytes / 4)`, marked as estimated.
 *
 * @example
 * createByteEstimateCounter().count("hello world"); // 3
 */
export function createByteEstimateCounter(): TokenCounter {
  return {
    name: `bytes/${ESTIMATE_BYTES_PER_TOKEN}`,
    estimated: true,
    count: (text) => Math.ceil(Buffer.byteLength(text, "utf8") / ESTIMATE_BYTES_PER_TOKEN),
  };
}

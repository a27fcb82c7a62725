import { z } from "zod";

const rate = () => z.number().nonnegative();

/** Prices of one model, in US dollars per million tokens, from a date on. */
export const priceEntrySchema = z.object({
  model: z.string().min(1),
  /** Other ids billed the same (dated snapshots, provider prefixes are stripped anyway). */
  aliases: z.array(z.string()).default([]),
  /** First day these prices apply, `YYYY-MM-DD`. */
  effectiveFrom: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "expected YYYY-MM-DD"),
  input: rate(),
  output: rate(),
  /** Cache reads; defaults to `input` when a provider has no discount. */
  cacheRead: rate().optional(),
  /** Writes to a 5-minute cache entry (Anthropic); defaults to `input`. */
  cacheWrite5m: rate().optional(),
  /** Writes to a 1-hour cache entry (Anthropic); defaults to `cacheWrite5m`. */
  cacheWrite1h: rate().optional(),
  /** Higher prices once a request's input exceeds `thresholdTokens` (long context). */
  longContext: z
    .object({
      thresholdTokens: z.number().int().positive(),
      input: rate(),
      output: rate(),
      cacheRead: rate().optional(),
      cacheWrite5m: rate().optional(),
      cacheWrite1h: rate().optional(),
    })
    .optional(),
  /** Where the figures come from. */
  source: z.string().optional(),
});

export type PriceEntry = z.input<typeof priceEntrySchema>;
export type ParsedPriceEntry = z.output<typeof priceEntrySchema>;

/** A price table as JSON: `{ "prices": [ ... ] }` or a bare array of entries. */
export const priceTableSchema = z.union([
  z.array(priceEntrySchema),
  z.object({ prices: z.array(priceEntrySchema) }).transform((table) => table.prices),
]);

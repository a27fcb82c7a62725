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

const ANTHROPIC = "https://www.anthropic.com/pricing (list prices, checked 2025-11)";
const OPENAI = "https://openai.com/api/pricing (standard tier, checked 2025-11)";

/** Sonnet 4 and 4.5 share list prices, with a long-context tier above 200k input tokens. */
const SONNET_4_RATES = {
  input: 3,
  output: 15,
  cacheRead: 0.3,
  cacheWrite5m: 3.75,
  cacheWrite1h: 6,
  longContext: { thresholdTokens: 200_000, input: 6, output: 22.5, cacheRead: 0.6, cacheWrite5m: 7.5, cacheWrite1h: 12 },
  source: ANTHROPIC,
} as const;

/**
 * The bundled list prices, dated. They age: check them against the providers' pages, and pass
 * your own (`prices`) or load a table (`loadPriceTable`) where it matters.
 */
export const BUNDLED_PRICES: readonly PriceEntry[] = [
  {
    model: "claude-opus-4-5",
    effectiveFrom: "2025-11-24",
    input: 5,
    output: 25,
    cacheRead: 0.5,
    cacheWrite5m: 6.25,
    cacheWrite1h: 10,
    source: ANTHROPIC,
  },
  {
    model: "claude-opus-4-1",
    effectiveFrom: "2025-08-05",
    input: 15,
    output: 75,
    cacheRead: 1.5,
    cacheWrite5m: 18.75,
    cacheWrite1h: 30,
    source: ANTHROPIC,
  },
  {
    model: "claude-opus-4",
    aliases: ["claude-opus-4-0"],
    effectiveFrom: "2025-05-22",
    input: 15,
    output: 75,
    cacheRead: 1.5,
    cacheWrite5m: 18.75,
    cacheWrite1h: 30,
    source: ANTHROPIC,
  },
  {
    model: "claude-sonnet-4-5",
    effectiveFrom: "2025-09-29",
    ...SONNET_4_RATES,
  },
  {
    model: "claude-sonnet-4",
    aliases: ["claude-sonnet-4-0"],
    effectiveFrom: "2025-05-22",
    ...SONNET_4_RATES,
  },
  {
    model: "claude-haiku-4-5",
    effectiveFrom: "2025-10-15",
    input: 1,
    output: 5,
    cacheRead: 0.1,
    cacheWrite5m: 1.25,
    cacheWrite1h: 2,
    source: ANTHROPIC,
  },
  {
    model: "claude-3-5-haiku",
    aliases: ["claude-3-5-haiku-latest"],
    effectiveFrom: "2024-11-04",
    input: 0.8,
    output: 4,
    cacheRead: 0.08,
    cacheWrite5m: 1,
    cacheWrite1h: 1.6,
    source: ANTHROPIC,
  },
  { model: "gpt-5", effectiveFrom: "2025-08-07", input: 1.25, output: 10, cacheRead: 0.125, source: OPENAI },
  { model: "gpt-5-mini", effectiveFrom: "2025-08-07", input: 0.25, output: 2, cacheRead: 0.025, source: OPENAI },
  { model: "gpt-5-nano", effectiveFrom: "2025-08-07", input: 0.05, output: 0.4, cacheRead: 0.005, source: OPENAI },
  { model: "gpt-4.1", effectiveFrom: "2025-04-14", input: 2, output: 8, cacheRead: 0.5, source: OPENAI },
  { model: "gpt-4.1-mini", effectiveFrom: "2025-04-14", input: 0.4, output: 1.6, cacheRead: 0.1, source: OPENAI },
  { model: "gpt-4.1-nano", effectiveFrom: "2025-04-14", input: 0.1, output: 0.4, cacheRead: 0.025, source: OPENAI },
  { model: "gpt-4o", effectiveFrom: "2024-10-01", input: 2.5, output: 10, cacheRead: 1.25, source: OPENAI },
  { model: "gpt-4o-mini", effectiveFrom: "2024-07-18", input: 0.15, output: 0.6, cacheRead: 0.075, source: OPENAI },
  { model: "o3", effectiveFrom: "2025-06-10", input: 2, output: 8, cacheRead: 0.5, source: OPENAI },
  { model: "o4-mini", effectiveFrom: "2025-04-16", input: 1.1, output: 4.4, cacheRead: 0.275, source: OPENAI },
];

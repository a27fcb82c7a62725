import { readFile } from "node:fs/promises";
import { InvalidArgumentError, type Usage, usageSchema } from "@bulkhead/core";
import { BUNDLED_PRICES, priceEntrySchema, priceTableSchema, type ParsedPriceEntry, type PriceEntry } from "./prices.js";
import { UnknownModelError } from "./unknown-model-error.js";

/** What a usage costs, part by part, in US dollars. */
export interface PricedUsage {
  model: string;
  usd: number;
  breakdown: { uncachedInput: number; cacheRead: number; cacheWrite5m: number; cacheWrite1h: number; output: number };
  /** The price entry's first day. */
  effectiveFrom: string;
  /** True when the long-context tier applied. */
  longContext: boolean;
}

export interface PriceUsageOptions {
  model: string;
  /** Entries that take precedence over the bundled table (same model and date wins). */
  prices?: readonly PriceEntry[];
  /** Price as of this date. @default now */
  at?: Date | string;
}

let bundled: ParsedPriceEntry[] | undefined;

/** `claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`; `anthropic/x` → `x`. */
function canonical(model: string): string[] {
  const bare = model
    .trim()
    .toLowerCase()
    .replace(/^(anthropic|openai|bedrock|vertex)[/:]/, "");
  const undated = bare.replace(/-(\d{8}|\d{4}-\d{2}-\d{2})$/, "").replace(/@\d{8}$/, "");
  return [...new Set([bare, undated])];
}

function findEntry(model: string, entries: readonly ParsedPriceEntry[], at: string): ParsedPriceEntry | undefined {
  const ids = canonical(model);
  const matching = entries.filter(
    (entry) => ids.includes(entry.model.toLowerCase()) || entry.aliases.some((alias) => ids.includes(alias.toLowerCase())),
  );
  return matching
    .filter((entry) => entry.effectiveFrom <= at)
    .sort((left, right) => right.effectiveFrom.localeCompare(left.effectiveFrom))[0];
}

/**
 * Prices a usage with the bundled, dated table (or your entries): uncached input, cache reads,
 * 5-minute and 1-hour cache writes, and output (reasoning included), with the long-context tier
 * when the input crosses its threshold. An unknown model throws {@link UnknownModelError};
 * nothing is ever priced as a silent zero.
 *
 * @example
 * priceUsage(usage, { model: "claude-sonnet-4-5" }).usd;
 */
export function priceUsage(usage: Usage, { model, prices = [], at = new Date() }: PriceUsageOptions): PricedUsage {
  if (typeof model !== "string" || model === "") throw new InvalidArgumentError("options.model", "expected a model id");
  const parsedUsage = usageSchema.safeParse(usage);
  if (!parsedUsage.success)
    throw new InvalidArgumentError(
      "usage",
      parsedUsage.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; "),
    );
  const day = (typeof at === "string" ? at : at.toISOString()).slice(0, 10);
  const own = prices.map((entry) => priceEntrySchema.parse(entry));
  bundled ??= BUNDLED_PRICES.map((entry) => priceEntrySchema.parse(entry));
  const entry = findEntry(model, own, day) ?? findEntry(model, bundled, day);
  if (!entry)
    throw new UnknownModelError(
      model,
      "price",
      [...own, ...bundled].map((known) => known.model),
    );

  const { inputTokens, uncachedInputTokens, cacheReadTokens, cacheWrite5mTokens, cacheWrite1hTokens, outputTokens } = parsedUsage.data;
  const tier = entry.longContext && inputTokens > entry.longContext.thresholdTokens ? entry.longContext : entry;
  const write5m = tier.cacheWrite5m ?? tier.input;
  const perMillion = (tokens: number, dollars: number) => (tokens * dollars) / 1_000_000;
  const breakdown = {
    uncachedInput: perMillion(uncachedInputTokens, tier.input),
    cacheRead: perMillion(cacheReadTokens, tier.cacheRead ?? tier.input),
    cacheWrite5m: perMillion(cacheWrite5mTokens, write5m),
    cacheWrite1h: perMillion(cacheWrite1hTokens, tier.cacheWrite1h ?? write5m),
    output: perMillion(outputTokens, tier.output),
  };
  const usd = breakdown.uncachedInput + breakdown.cacheRead + breakdown.cacheWrite5m + breakdown.cacheWrite1h + breakdown.output;
  return { model: entry.model, usd, breakdown, effectiveFrom: entry.effectiveFrom, longContext: tier !== entry };
}

/** Reads a price table from JSON (`[ ... ]` or `{ "prices": [ ... ] }`), validated. */
export async function loadPriceTable(path: string): Promise<PriceEntry[]> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new InvalidArgumentError("path", `cannot read price table ${path}: ${(error as Error).message}`, { cause: error });
  }
  const parsed = priceTableSchema.safeParse(json);
  if (!parsed.success)
    throw new InvalidArgumentError(
      "path",
      `price table ${path} is invalid: ${parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ")}`,
    );
  return parsed.data;
}

import { readFile } from "node:fs/promises";
import { formatZodIssues, InvalidArgumentError, type Usage, usageSchema, validateOptions } from "@bulkhead/core";
import { calcPrice, type ModelPrice, type TieredPrices } from "@pydantic/genai-prices";
import { priceEntrySchema, priceTableSchema, type ParsedPriceEntry, type PriceEntry } from "./prices.js";
import { UnknownModelError } from "./unknown-model-error.js";

/** What a usage costs, part by part, in US dollars. */
export interface PricedUsage {
  model: string;
  usd: number;
  breakdown: { uncachedInput: number; cacheRead: number; cacheWrite5m: number; cacheWrite1h: number; output: number };
  /** The price entry's first day (`YYYY-MM-DD`); for catalog prices without a start date, the day priced. */
  effectiveFrom: string;
  /** True when the long-context tier applied. */
  longContext: boolean;
  /** Where the rates come from: your `prices`, or the `@pydantic/genai-prices` catalog. */
  source: "prices" | "genai-prices";
}

export interface PriceUsageOptions {
  model: string;
  /** Entries that take precedence over the catalog (same model and date wins). */
  prices?: readonly PriceEntry[];
  /** Price as of this date. @default now */
  at?: Date | string;
}

/** Rates in dollars per million tokens, one tier resolved. */
interface Rates {
  model: string;
  effectiveFrom: string;
  input: number;
  output: number;
  reasoning: number;
  cacheRead: number;
  cacheWrite5m: number;
  cacheWrite1h: number;
  longContext: boolean;
  source: PricedUsage["source"];
}

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

function ownRates(entry: ParsedPriceEntry, inputTokens: number): Rates {
  const tier = entry.longContext && inputTokens > entry.longContext.thresholdTokens ? entry.longContext : entry;
  const write5m = tier.cacheWrite5m ?? tier.input;
  return {
    model: entry.model,
    effectiveFrom: entry.effectiveFrom,
    input: tier.input,
    output: tier.output,
    reasoning: tier.output,
    cacheRead: tier.cacheRead ?? tier.input,
    cacheWrite5m: write5m,
    cacheWrite1h: tier.cacheWrite1h ?? write5m,
    longContext: tier !== entry,
    source: "prices",
  };
}

/** The catalog's match for a model on a day, cached: the lookup costs tens of microseconds. */
const catalog = new Map<string, { model: string; prices: ModelPrice; effectiveFrom: string } | null>();

function catalogEntry(model: string, day: string): { model: string; prices: ModelPrice; effectiveFrom: string } | undefined {
  const key = `${day} ${model}`;
  let found = catalog.get(key);
  if (found === undefined) {
    const prefix = /^(anthropic|openai)[/:]/i.exec(model.trim());
    const id = prefix ? model.trim().slice(prefix[0].length) : model;
    const options = { timestamp: new Date(`${day}T12:00:00Z`), ...(prefix ? { providerId: prefix[1]!.toLowerCase() } : {}) };
    const result = calcPrice({ input_tokens: 0, output_tokens: 0 }, id, options);
    found = result ? { model: result.model.id, prices: result.model_price, effectiveFrom: startDate(result.model.prices, day) } : null;
    if (catalog.size > 1000) catalog.clear();
    catalog.set(key, found);
  }
  return found ?? undefined;
}

/** The start date of the catalog's conditional price in force on `day`, or `day` when it has none. */
function startDate(prices: unknown, day: string): string {
  if (!Array.isArray(prices)) return day;
  let start: string | undefined;
  for (const price of prices as { constraint?: { type?: string; start_date?: string } }[]) {
    const date = price.constraint?.type === "start_date" ? price.constraint.start_date?.slice(0, 10) : undefined;
    if (date !== undefined && date <= day && (start === undefined || date > start)) start = date;
  }
  return start ?? day;
}

/** A flat or tiered catalog rate; tiers reprice the whole request once its input crosses `start`. */
function rate(value: number | TieredPrices | undefined, inputTokens: number): { rate: number; tiered: boolean } | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "number") return { rate: value, tiered: false };
  let price = value.base;
  let tiered = false;
  for (const tier of value.tiers) {
    if (inputTokens > tier.start) {
      price = tier.price;
      tiered = true;
    }
  }
  return { rate: price, tiered };
}

/** Rates of catalog entries with no long-context tier: the same for every call, so built once. */
const flatRates = new WeakMap<object, Rates>();

function catalogRates(entry: { model: string; prices: ModelPrice; effectiveFrom: string }, inputTokens: number): Rates {
  const known = flatRates.get(entry);
  if (known) return known;
  const rates = buildCatalogRates(entry, inputTokens);
  if (!Object.values(entry.prices).some((value) => typeof value === "object" && value !== null)) flatRates.set(entry, rates);
  return rates;
}

function buildCatalogRates(entry: { model: string; prices: ModelPrice; effectiveFrom: string }, inputTokens: number): Rates {
  const get = (key: string) => rate(entry.prices[key], inputTokens);
  const input = get("input_mtok") ?? { rate: 0, tiered: false };
  const output = get("output_mtok") ?? { rate: 0, tiered: false };
  const cacheRead = get("cache_read_mtok") ?? input;
  // The catalog's unit tree: a 5m or 1h write without its own rate is a cache write, and a cache
  // write without one is input.
  const cacheWrite = get("cache_write_mtok") ?? input;
  const cacheWrite5m = get("cache_write_5m_mtok") ?? cacheWrite;
  const cacheWrite1h = get("cache_write_1h_mtok") ?? cacheWrite;
  const reasoning = get("output_reasoning_mtok") ?? output;
  const all = [input, output, cacheRead, cacheWrite5m, cacheWrite1h, reasoning];
  return {
    model: entry.model,
    effectiveFrom: entry.effectiveFrom,
    input: input.rate,
    output: output.rate,
    reasoning: reasoning.rate,
    cacheRead: cacheRead.rate,
    cacheWrite5m: cacheWrite5m.rate,
    cacheWrite1h: cacheWrite1h.rate,
    longContext: all.some((part) => part.tiered),
    source: "genai-prices",
  };
}

/**
 * The counts to price, made whole: a usage that gives `inputTokens` without its parts (or with
 * parts that do not add up) has the rest priced as uncached input, the most expensive input rate,
 * so no token is ever priced at $0 by omission.
 */
function wholeUsage(usage: Usage): Usage {
  const cached = usage.cacheReadTokens + usage.cacheWrite5mTokens + usage.cacheWrite1hTokens;
  const uncachedInputTokens = Math.max(usage.uncachedInputTokens, usage.inputTokens - cached);
  return {
    ...usage,
    uncachedInputTokens,
    inputTokens: uncachedInputTokens + cached,
    reasoningTokens: Math.min(usage.reasoningTokens, usage.outputTokens),
  };
}

const USAGE_FIELDS = [
  "inputTokens",
  "uncachedInputTokens",
  "cacheReadTokens",
  "cacheWrite5mTokens",
  "cacheWrite1hTokens",
  "outputTokens",
  "reasoningTokens",
] as const;

function parseUsage(usage: Partial<Usage>): Usage {
  // The hot path (every settled call is priced): a plain check of the seven counts, with zod's
  // parse kept for the error message of a bad one.
  if (typeof usage === "object" && usage !== null) {
    const counts = {} as Usage;
    let valid = true;
    for (const field of USAGE_FIELDS) {
      const value = usage[field] ?? 0;
      if (!(Number.isInteger(value) && value >= 0)) {
        valid = false;
        break;
      }
      counts[field] = value;
    }
    if (valid) return wholeUsage(counts);
  }
  return wholeUsage(validateOptions(usageSchema, usage, "usage"));
}

/**
 * Prices a usage with your entries first, then the maintained `@pydantic/genai-prices` catalog
 * (dated prices, long-context tiers): uncached input, cache reads, 5-minute and 1-hour cache
 * writes, and output (reasoning included). A usage without `uncachedInputTokens` has it derived
 * from `inputTokens`. An unknown model throws {@link UnknownModelError}: nothing is ever priced
 * as a silent zero. Budgets and adapters catch it after a paid call: the usage is booked, its
 * cost is marked unknown, and a budget with a `usd` limit fails closed (see docs/budgets.md).
 *
 * @example
 * priceUsage({ inputTokens: 1_000_000, outputTokens: 2_000 }, { model: "claude-sonnet-4-5" }).usd; // 3.03
 */
export function priceUsage(usage: Partial<Usage>, { model, prices = [], at = new Date() }: PriceUsageOptions): PricedUsage {
  if (typeof model !== "string" || model === "") throw new InvalidArgumentError("options.model", "expected a model id");
  const whole = parseUsage(usage);
  const day = (typeof at === "string" ? at : at.toISOString()).slice(0, 10);
  const own = prices.length === 0 ? [] : prices.map((entry) => priceEntrySchema.parse(entry));
  const entry = findEntry(model, own, day);
  let rates: Rates;
  if (entry) rates = ownRates(entry, whole.inputTokens);
  else {
    const found = catalogEntry(model, day);
    if (!found)
      throw new UnknownModelError(
        model,
        "price",
        own.map((known) => known.model),
      );
    rates = catalogRates(found, whole.inputTokens);
  }
  const perMillion = (tokens: number, dollars: number) => (tokens * dollars) / 1_000_000;
  const breakdown = {
    uncachedInput: perMillion(whole.uncachedInputTokens, rates.input),
    cacheRead: perMillion(whole.cacheReadTokens, rates.cacheRead),
    cacheWrite5m: perMillion(whole.cacheWrite5mTokens, rates.cacheWrite5m),
    cacheWrite1h: perMillion(whole.cacheWrite1hTokens, rates.cacheWrite1h),
    output: perMillion(whole.outputTokens - whole.reasoningTokens, rates.output) + perMillion(whole.reasoningTokens, rates.reasoning),
  };
  const usd = breakdown.uncachedInput + breakdown.cacheRead + breakdown.cacheWrite5m + breakdown.cacheWrite1h + breakdown.output;
  return { model: rates.model, usd, breakdown, effectiveFrom: rates.effectiveFrom, longContext: rates.longContext, source: rates.source };
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
  if (!parsed.success) throw new InvalidArgumentError("path", `price table ${path} is invalid: ${formatZodIssues(parsed.error)}`);
  return parsed.data;
}

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { emptyUsage } from "@bulkhead/core";
import { createTempDir } from "@bulkhead/test-utils";
import { calcPrice } from "@pydantic/genai-prices";
import { describe, expect, it } from "vitest";
import { normalizeUsage, usageOnly } from "./normalize-usage.js";
import { loadPriceTable, priceUsage } from "./price-usage.js";

describe("priceUsage", () => {
  it("prices every part of an Anthropic usage: uncached, cache read, 5m and 1h writes, output", () => {
    const usage = usageOnly(
      normalizeUsage("anthropic", {
        input_tokens: 1_000_000,
        cache_read_input_tokens: 1_000_000,
        cache_creation_input_tokens: 2_000_000,
        cache_creation: { ephemeral_5m_input_tokens: 1_000_000, ephemeral_1h_input_tokens: 1_000_000 },
        output_tokens: 1_000_000,
      }),
    );
    // 5M input tokens in one request would cross the long-context tier; price a per-part model without one.
    const priced = priceUsage(usage, { model: "claude-haiku-4-5-20251001" });
    expect(priced.breakdown).toEqual({ uncachedInput: 1, cacheRead: 0.1, cacheWrite5m: 1.25, cacheWrite1h: 2, output: 5 });
    expect(priced.usd).toBeCloseTo(9.35, 10);
    expect(priced).toMatchObject({ model: "claude-haiku-4-5", longContext: false, source: "genai-prices" });
  });

  it("knows the current model ids from the catalog, and agrees with its own total", () => {
    const usage = usageOnly(
      normalizeUsage("anthropic", {
        input_tokens: 1000,
        cache_read_input_tokens: 50_000,
        cache_creation_input_tokens: 3000,
        cache_creation: { ephemeral_5m_input_tokens: 2000, ephemeral_1h_input_tokens: 1000 },
        output_tokens: 700,
      }),
    );
    for (const model of ["claude-opus-5-5", "claude-sonnet-4-6", "claude-opus-4-7", "claude-sonnet-5-5", "claude-sonnet-4-5-20250929"]) {
      const expected = calcPrice(
        { input_tokens: 54_000, cache_read_tokens: 50_000, cache_write_tokens: 3000, cache_write_1h_tokens: 1000, output_tokens: 700 },
        model,
        { providerId: "anthropic" },
      );
      expect(expected, model).not.toBeNull();
      expect(priceUsage(usage, { model }).usd, model).toBeCloseTo(expected!.total_price, 12);
    }
    const openai = usageOnly(
      normalizeUsage("openai", { input_tokens: 10_000, input_tokens_details: { cached_tokens: 4000 }, output_tokens: 500 }),
    );
    for (const model of ["gpt-5.1", "gpt-5.5", "openai/gpt-4o"]) {
      const expected = calcPrice({ input_tokens: 10_000, cache_read_tokens: 4000, output_tokens: 500 }, model.replace("openai/", ""));
      expect(priceUsage(openai, { model }).usd, model).toBeCloseTo(expected!.total_price, 12);
    }
  });

  it("derives uncached input when a usage gives only inputTokens: never $0 by omission", () => {
    expect(priceUsage({ inputTokens: 1_000_000 }, { model: "claude-sonnet-4-6" })).toMatchObject({
      usd: 3,
      breakdown: { uncachedInput: 3 },
    });
    // Parts that do not add up to inputTokens: the rest is priced as uncached input.
    expect(priceUsage({ inputTokens: 1_000_000, cacheReadTokens: 500_000 }, { model: "claude-sonnet-4-6" }).usd).toBeCloseTo(
      1.5 + 0.15,
      12,
    );
    expect(priceUsage({ outputTokens: 1_000_000 }, { model: "gpt-5.1" }).usd).toBe(10);
  });

  it("applies the long-context tier above its threshold", () => {
    const small = { ...emptyUsage(), inputTokens: 200_000, uncachedInputTokens: 200_000, outputTokens: 1000 };
    const large = { ...emptyUsage(), inputTokens: 200_001, uncachedInputTokens: 200_001, outputTokens: 1000 };
    expect(priceUsage(small, { model: "claude-sonnet-4-5" })).toMatchObject({ usd: 0.6 + 0.015, longContext: false });
    const priced = priceUsage(large, { model: "anthropic/claude-sonnet-4-5" });
    expect(priced.longContext).toBe(true);
    expect(priced.usd).toBeCloseTo((200_001 * 6) / 1e6 + (1000 * 22.5) / 1e6, 10);
  });

  it("prices OpenAI cached input at the cached rate", () => {
    const usage = usageOnly(
      normalizeUsage("openai", { prompt_tokens: 1_000_000, prompt_tokens_details: { cached_tokens: 500_000 }, completion_tokens: 100_000 }),
    );
    expect(priceUsage(usage, { model: "gpt-4o" }).usd).toBeCloseTo(1.25 + 0.625 + 1, 10);
  });

  it("uses the entry in force at the date, and the caller's entries first", () => {
    const usage = { ...emptyUsage(), inputTokens: 1_000_000, uncachedInputTokens: 1_000_000 };
    const prices = [
      { model: "acme-1", effectiveFrom: "2026-01-01", input: 2, output: 4 },
      { model: "acme-1", effectiveFrom: "2026-06-01", input: 1, output: 2 },
      { model: "gpt-4o", effectiveFrom: "2026-01-01", input: 9, output: 9 },
    ];
    expect(priceUsage(usage, { model: "acme-1", prices, at: "2026-03-01" })).toMatchObject({
      usd: 2,
      source: "prices",
      effectiveFrom: "2026-01-01",
    });
    expect(priceUsage(usage, { model: "acme-1", prices, at: new Date("2026-07-01") }).usd).toBe(1);
    expect(priceUsage(usage, { model: "gpt-4o", prices, at: "2026-02-01" }).usd).toBe(9);
    expect(() => priceUsage(usage, { model: "acme-1", prices, at: "2025-12-31" })).toThrow('no price known for model "acme-1"');
  });

  it("never prices an unknown model as zero", () => {
    expect(() => priceUsage(emptyUsage(), { model: "mystery-model" })).toThrow(
      /^no price known for model "mystery-model": it is in neither your prices nor the @pydantic\/genai-prices catalog: pass prices/,
    );
    expect(() => priceUsage({ ...emptyUsage(), inputTokens: -5 }, { model: "gpt-4o" })).toThrow("invalid usage: inputTokens");
  });

  it("loads a price table from JSON and refuses an invalid one", async () => {
    await using dir = createTempDir();
    writeFileSync(
      join(dir.path, "prices.json"),
      JSON.stringify({ prices: [{ model: "local-model", effectiveFrom: "2026-01-01", input: 0.5, output: 1 }] }),
    );
    writeFileSync(join(dir.path, "bad.json"), JSON.stringify([{ model: "x", effectiveFrom: "yesterday", input: 1, output: 1 }]));
    const prices = await loadPriceTable(join(dir.path, "prices.json"));
    expect(priceUsage({ ...emptyUsage(), outputTokens: 2_000_000 }, { model: "local-model", prices }).usd).toBe(2);
    await expect(loadPriceTable(join(dir.path, "bad.json"))).rejects.toThrow("0.effectiveFrom: expected YYYY-MM-DD");
  });
});

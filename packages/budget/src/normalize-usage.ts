import { emptyUsage, type Usage } from "@bulkhead/core";
import { InvalidUsageError } from "./invalid-usage-error.js";

/** Where a raw usage object comes from; each has its own cache semantics. */
export const USAGE_SOURCES = ["anthropic", "openai", "ai-sdk", "claude-agent-sdk", "claude-code-stream", "codex"] as const;
export type UsageSource = (typeof USAGE_SOURCES)[number];

/** Normalized usage, with every field of the raw object that was not understood kept aside. */
export type NormalizedUsage = Usage & { unknown: Record<string, unknown> };

type Raw = Record<string, unknown>;

function isRecord(value: unknown): value is Raw {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Reads a token count: absent is 0; negative, fractional, NaN or non-numbers are errors. */
function count(source: string, raw: Raw, path: string): number {
  let value: unknown = raw;
  for (const key of path.split(".")) value = isRecord(value) ? value[key] : undefined;
  if (value === undefined || value === null) return 0;
  if (typeof value !== "number" || !Number.isFinite(value))
    throw new InvalidUsageError(source, path, value, "expected a finite number of tokens");
  if (value < 0) throw new InvalidUsageError(source, path, value, "token counts are never negative");
  if (!Number.isInteger(value)) throw new InvalidUsageError(source, path, value, "token counts are whole numbers");
  return value;
}

/** Copies the raw fields not in `known` (dotted paths of nested objects count as known). */
function leftovers(raw: Raw, known: readonly string[]): Record<string, unknown> {
  const unknown: Record<string, unknown> = {};
  const walk = (value: Raw, prefix: string) => {
    for (const [key, child] of Object.entries(value)) {
      const path = prefix ? `${prefix}.${key}` : key;
      if (known.includes(path)) continue;
      if (isRecord(child) && known.some((entry) => entry.startsWith(`${path}.`))) walk(child, path);
      else unknown[path] = child;
    }
  };
  walk(raw, "");
  return unknown;
}

function subset(source: string, field: string, part: number, total: number): void {
  if (part > total) throw new InvalidUsageError(source, field, part, `is larger than the total it is part of (${total})`);
}

const ANTHROPIC_KNOWN = [
  "input_tokens",
  "output_tokens",
  "cache_read_input_tokens",
  "cache_creation_input_tokens",
  "cache_creation.ephemeral_5m_input_tokens",
  "cache_creation.ephemeral_1h_input_tokens",
  // Not read: server_tool_use (web search and fetch requests) and service_tier are not token
  // counts; they stay in `unknown`, where a caller who prices them finds them.
  "output_tokens_details.thinking_tokens",
];

/** Anthropic style: `input_tokens` excludes the cache; the three input parts add up. */
function fromAnthropic(source: string, raw: Raw): NormalizedUsage {
  const uncached = count(source, raw, "input_tokens");
  const cacheRead = count(source, raw, "cache_read_input_tokens");
  const creation = count(source, raw, "cache_creation_input_tokens");
  const write1h = count(source, raw, "cache_creation.ephemeral_1h_input_tokens");
  let write5m = count(source, raw, "cache_creation.ephemeral_5m_input_tokens");
  if (write5m + write1h === 0) write5m = creation;
  else if (creation > 0 && write5m + write1h !== creation) {
    throw new InvalidUsageError(
      source,
      "cache_creation",
      raw.cache_creation,
      `its 5m and 1h parts (${write5m} + ${write1h}) do not add up to cache_creation_input_tokens (${creation})`,
    );
  }
  const output = count(source, raw, "output_tokens");
  const thinking = count(source, raw, "output_tokens_details.thinking_tokens");
  subset(source, "output_tokens_details.thinking_tokens", thinking, output);
  return {
    ...emptyUsage(),
    inputTokens: uncached + cacheRead + write5m + write1h,
    uncachedInputTokens: uncached,
    cacheReadTokens: cacheRead,
    cacheWrite5mTokens: write5m,
    cacheWrite1hTokens: write1h,
    outputTokens: output,
    reasoningTokens: thinking,
    unknown: leftovers(raw, ANTHROPIC_KNOWN),
  };
}

const OPENAI_KNOWN = [
  "prompt_tokens",
  "completion_tokens",
  "total_tokens",
  "prompt_tokens_details.cached_tokens",
  "prompt_tokens_details.cache_write_tokens",
  "completion_tokens_details.reasoning_tokens",
  "input_tokens",
  "output_tokens",
  "input_tokens_details.cached_tokens",
  "input_tokens_details.cache_write_tokens",
  "input_tokens_details.cache_write_tokens_details.ttl_30m_tokens",
  "input_tokens_details.cache_write_tokens_details.ttl_12h_tokens",
  "output_tokens_details.reasoning_tokens",
];

/**
 * OpenAI style (Chat Completions or Responses): input includes cached reads and cache writes.
 * Writes with 12-hour retention go to the long cache field, the rest to the short one.
 */
function fromOpenAi(raw: Raw): NormalizedUsage {
  const source = "openai";
  const responses = "input_tokens" in raw || "output_tokens" in raw;
  const details = responses ? "input_tokens_details" : "prompt_tokens_details";
  const input = count(source, raw, responses ? "input_tokens" : "prompt_tokens");
  const cached = count(source, raw, `${details}.cached_tokens`);
  const writes = count(source, raw, `${details}.cache_write_tokens`);
  const long = Math.min(writes, count(source, raw, "input_tokens_details.cache_write_tokens_details.ttl_12h_tokens"));
  const output = count(source, raw, responses ? "output_tokens" : "completion_tokens");
  const reasoning = count(source, raw, responses ? "output_tokens_details.reasoning_tokens" : "completion_tokens_details.reasoning_tokens");
  return openAiShaped(source, input, cached, writes - long, long, output, reasoning, leftovers(raw, OPENAI_KNOWN));
}

function openAiShaped(
  source: string,
  input: number,
  cacheRead: number,
  write5m: number,
  write1h: number,
  output: number,
  reasoning: number,
  unknown: Record<string, unknown>,
): NormalizedUsage {
  subset(source, "cached + cache write tokens", cacheRead + write5m + write1h, input);
  subset(source, "reasoning tokens", reasoning, output);
  return {
    ...emptyUsage(),
    inputTokens: input,
    uncachedInputTokens: input - cacheRead - write5m - write1h,
    cacheReadTokens: cacheRead,
    cacheWrite5mTokens: write5m,
    cacheWrite1hTokens: write1h,
    outputTokens: output,
    reasoningTokens: reasoning,
    unknown,
  };
}

const CODEX_KNOWN = [
  "input_tokens",
  "cached_input_tokens",
  "cache_write_input_tokens",
  "output_tokens",
  "reasoning_output_tokens",
  "total_tokens",
];

/**
 * Codex (`codex exec --json`, `turn.completed.usage`): OpenAI semantics under Codex's own names.
 * `input_tokens` includes `cached_input_tokens` and `cache_write_input_tokens`; `output_tokens`
 * includes `reasoning_output_tokens`.
 */
function fromCodex(raw: Raw): NormalizedUsage {
  const source = "codex";
  return openAiShaped(
    source,
    count(source, raw, "input_tokens"),
    count(source, raw, "cached_input_tokens"),
    count(source, raw, "cache_write_input_tokens"),
    0,
    count(source, raw, "output_tokens"),
    count(source, raw, "reasoning_output_tokens"),
    leftovers(raw, CODEX_KNOWN),
  );
}

const AI_SDK_KNOWN = [
  "inputTokens",
  "outputTokens",
  "totalTokens",
  "reasoningTokens",
  "cachedInputTokens",
  "inputTokenDetails.noCacheTokens",
  "inputTokenDetails.cacheReadTokens",
  "inputTokenDetails.cacheWriteTokens",
  "outputTokenDetails.textTokens",
  "outputTokenDetails.reasoningTokens",
  "inputTokens.total",
  "inputTokens.noCache",
  "inputTokens.cacheRead",
  "inputTokens.cacheWrite",
  "outputTokens.total",
  "outputTokens.text",
  "outputTokens.reasoning",
  "raw",
];

/**
 * Vercel AI SDK: the provider-level shape (`inputTokens: { total, noCache, cacheRead,
 * cacheWrite }`), the v6 result shape (`inputTokens` + `inputTokenDetails`) and the v5 flat
 * shape (`cachedInputTokens`, `reasoningTokens`). Input totals include the cache.
 */
function fromAiSdk(raw: Raw): NormalizedUsage {
  const source = "ai-sdk";
  const nested = isRecord(raw.inputTokens) || isRecord(raw.outputTokens);
  const input = count(source, raw, nested ? "inputTokens.total" : "inputTokens");
  const cacheRead = nested
    ? count(source, raw, "inputTokens.cacheRead")
    : count(source, raw, "inputTokenDetails.cacheReadTokens") || count(source, raw, "cachedInputTokens");
  const cacheWrite = count(source, raw, nested ? "inputTokens.cacheWrite" : "inputTokenDetails.cacheWriteTokens");
  const output = count(source, raw, nested ? "outputTokens.total" : "outputTokens");
  const reasoning = nested
    ? count(source, raw, "outputTokens.reasoning")
    : count(source, raw, "outputTokenDetails.reasoningTokens") || count(source, raw, "reasoningTokens");
  subset(source, "cacheRead + cacheWrite", cacheRead + cacheWrite, input);
  subset(source, "reasoning", reasoning, output);
  return {
    ...emptyUsage(),
    inputTokens: input,
    uncachedInputTokens: input - cacheRead - cacheWrite,
    cacheReadTokens: cacheRead,
    cacheWrite5mTokens: cacheWrite,
    outputTokens: output,
    reasoningTokens: reasoning,
    unknown: leftovers(raw, AI_SDK_KNOWN),
  };
}

const AGENT_SDK_KNOWN = [
  "inputTokens",
  "outputTokens",
  "cacheReadInputTokens",
  "cacheCreationInputTokens",
  "cacheCreation5mInputTokens",
  "cacheCreation1hInputTokens",
  "cacheCreationEphemeral5mInputTokens",
  "cacheCreationEphemeral1hInputTokens",
  "thinkingTokens",
  // ModelUsage's other fields: not token counts of the call.
  "webSearchRequests",
  "costUSD",
  "contextWindow",
  "maxOutputTokens",
];

/** Claude Agent SDK `modelUsage` entries (camelCase, Anthropic semantics) or its snake_case `usage`. */
function fromAgentSdk(raw: Raw): NormalizedUsage {
  const source = "claude-agent-sdk";
  if ("input_tokens" in raw || "output_tokens" in raw) return fromAnthropic(source, raw);
  const uncached = count(source, raw, "inputTokens");
  const cacheRead = count(source, raw, "cacheReadInputTokens");
  // The SDK's ModelUsage says cacheCreationEphemeral5m/1hInputTokens (parts of
  // cacheCreationInputTokens; writes whose lifetime was not reported are in neither, and are
  // priced at the 5-minute rate, as costUSD does). Older shapes say cacheCreation5m/1h.
  const part5m = count(source, raw, "cacheCreationEphemeral5mInputTokens") || count(source, raw, "cacheCreation5mInputTokens");
  const write1h = count(source, raw, "cacheCreationEphemeral1hInputTokens") || count(source, raw, "cacheCreation1hInputTokens");
  const creation = "cacheCreationInputTokens" in raw ? count(source, raw, "cacheCreationInputTokens") : part5m + write1h;
  if (part5m + write1h > creation)
    throw new InvalidUsageError(
      source,
      "cacheCreationInputTokens",
      creation,
      `is smaller than its 5m and 1h parts (${part5m} + ${write1h})`,
    );
  const write5m = creation - write1h;
  const output = count(source, raw, "outputTokens");
  const thinking = count(source, raw, "thinkingTokens");
  subset(source, "thinkingTokens", thinking, output);
  return {
    ...emptyUsage(),
    inputTokens: uncached + cacheRead + write5m + write1h,
    uncachedInputTokens: uncached,
    cacheReadTokens: cacheRead,
    cacheWrite5mTokens: write5m,
    cacheWrite1hTokens: write1h,
    outputTokens: output,
    reasoningTokens: thinking,
    unknown: leftovers(raw, AGENT_SDK_KNOWN),
  };
}

/**
 * Turns a provider's raw usage object into core's {@link Usage}: `inputTokens` is the whole
 * prompt (cache included), with its parts beside it. Anthropic and Claude counts exclude the
 * cache from `input_tokens` (additive); OpenAI and the AI SDK include it (subset). Negative,
 * fractional or non-numeric counts and parts larger than their totals throw
 * {@link InvalidUsageError}; fields not understood are kept in `unknown`, never dropped silently.
 *
 * @example
 * normalizeUsage("anthropic", { input_tokens: 10, cache_read_input_tokens: 90, output_tokens: 5 });
 * // { inputTokens: 100, uncachedInputTokens: 10, cacheReadTokens: 90, outputTokens: 5, ... }
 */
export function normalizeUsage(source: UsageSource, raw: unknown): NormalizedUsage {
  if (!isRecord(raw)) throw new InvalidUsageError(source, "(usage)", raw, "expected the provider's usage object");
  switch (source) {
    case "anthropic":
    case "claude-code-stream":
      return fromAnthropic(source, raw);
    case "openai":
      return fromOpenAi(raw);
    case "ai-sdk":
      return fromAiSdk(raw);
    case "claude-agent-sdk":
      return fromAgentSdk(raw);
    case "codex":
      return fromCodex(raw);
    default:
      throw new InvalidUsageError(String(source), "(source)", source, `expected one of ${USAGE_SOURCES.join(", ")}`);
  }
}

/** The usage without the fields kept aside, for budgets and trackers. */
export function usageOnly(normalized: NormalizedUsage): Usage {
  const { unknown: _unknown, ...usage } = normalized;
  return usage;
}

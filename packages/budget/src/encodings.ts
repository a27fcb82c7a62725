/** The tiktoken encodings bulkhead counts with. */
export const ENCODINGS = ["o200k_base", "cl100k_base"] as const;
export type Encoding = (typeof ENCODINGS)[number];

/** OpenAI model ids (by prefix, longest first) → their encoding. */
const OPENAI_PREFIXES: readonly [prefix: string, encoding: Encoding][] = [
  ["gpt-5", "o200k_base"],
  ["gpt-4.1", "o200k_base"],
  ["gpt-4.5", "o200k_base"],
  ["gpt-4o", "o200k_base"],
  ["chatgpt-4o", "o200k_base"],
  ["codex-", "o200k_base"],
  ["o4", "o200k_base"],
  ["o3", "o200k_base"],
  ["o1", "o200k_base"],
  ["gpt-oss", "o200k_base"],
  ["gpt-4", "cl100k_base"],
  ["gpt-3.5", "cl100k_base"],
  ["text-embedding-3", "cl100k_base"],
  ["text-embedding-ada-002", "cl100k_base"],
];

/**
 * Anthropic publishes no tokenizer for current Claude models, so bulkhead counts with
 * o200k_base and multiplies. Default factors, from public comparisons against Anthropic's
 * `count_tokens` endpoint (sammcj/ingest PR #65): ×1.18 for Claude models before Opus 4.7,
 * ×1.53 for the tokenizer that Opus 4.7 introduced (assumed for later versions too). Learn
 * better ones from reported usage with `calibrate`.
 */
export const CLAUDE_FACTORS = { legacy: 1.18, opus47: 1.53 } as const;

/** Extra margin of a Claude estimate's upper bound over the estimate before calibration. */
export const CLAUDE_UPPER_BOUND_MARGIN = 1.15;

/** The encoding for an OpenAI model id, or undefined when it is not an OpenAI model. */
export function openAiEncoding(model: string): Encoding | undefined {
  const id = model.toLowerCase().replace(/^openai\//, "");
  return OPENAI_PREFIXES.find(([prefix]) => id.startsWith(prefix))?.[1];
}

/** The default o200k multiplier for a Claude model id, or undefined when it is not Claude. */
export function claudeFactor(model: string): number | undefined {
  const id = model.toLowerCase().replace(/^anthropic\//, "");
  if (!id.startsWith("claude")) return undefined;
  const version =
    /claude-(?:opus|sonnet|haiku)-(\d+)(?:[-.](\d{1,2}))?(?:-|$)/.exec(id) ??
    /claude-(\d+)(?:[-.](\d{1,2}))?-(?:opus|sonnet|haiku)/.exec(id);
  if (!version) return CLAUDE_FACTORS.legacy;
  const major = Number(version[1]);
  const minor = Number(version[2] ?? 0);
  return major > 4 || (major === 4 && minor >= 7) ? CLAUDE_FACTORS.opus47 : CLAUDE_FACTORS.legacy;
}

/** Model ids with a known encoding, for error messages. */
export function knownModelFamilies(): string[] {
  return [...OPENAI_PREFIXES.map(([prefix]) => `${prefix}*`), "claude-*"];
}

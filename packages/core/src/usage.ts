import { z } from "zod";

const tokens = () => z.number().int().nonnegative().default(0);

/**
 * Normalized token usage of one or more model calls. `@bulkhead/budget` fills it from any
 * provider's usage fields; every field is a token count, never negative.
 *
 * `inputTokens` is the whole prompt: `uncachedInputTokens + cacheReadTokens +
 * cacheWrite5mTokens + cacheWrite1hTokens`.
 */
export const usageSchema = z.object({
  /** Every prompt token, cached or not. @default 0 */
  inputTokens: tokens(),
  /** Prompt tokens neither read from nor written to the cache. @default 0 */
  uncachedInputTokens: tokens(),
  /** Prompt tokens read from the cache. @default 0 */
  cacheReadTokens: tokens(),
  /** Prompt tokens written to a 5-minute cache entry. @default 0 */
  cacheWrite5mTokens: tokens(),
  /** Prompt tokens written to a 1-hour cache entry. @default 0 */
  cacheWrite1hTokens: tokens(),
  /** Generated tokens, reasoning included. @default 0 */
  outputTokens: tokens(),
  /** The part of `outputTokens` spent on reasoning. @default 0 */
  reasoningTokens: tokens(),
});

export type Usage = z.output<typeof usageSchema>;

/** Usage attributed to one repo or one operation, with its price when known. */
export const usageBreakdownSchema = z.object({
  usage: usageSchema,
  totalTokens: z.number().int().nonnegative(),
  usd: z.number().nonnegative().optional(),
});

export type UsageBreakdown = z.output<typeof usageBreakdownSchema>;

/**
 * What a task consumed, by seed 000's four budget kinds, by repo and by operation.
 * `@bulkhead/budget` produces it; `@bulkhead/handover` renders it.
 */
export const usageReportSchema = z.object({
  taskId: z.string().optional(),
  /** Tokens read as context (prompt tokens of context reads). */
  contextReadTokens: z.number().int().nonnegative(),
  /** Tokens generated. */
  generationTokens: z.number().int().nonnegative(),
  /** Tokens spent in tool calls (their inputs and results). */
  toolCallTokens: z.number().int().nonnegative(),
  /** Every token of the task. */
  totalTokens: z.number().int().nonnegative(),
  /** The task's price in US dollars, when a price table was given. */
  usd: z.number().nonnegative().optional(),
  usage: usageSchema,
  byRepo: z.record(z.string(), usageBreakdownSchema),
  byOperation: z.record(z.string(), usageBreakdownSchema),
});

export type UsageReport = z.output<typeof usageReportSchema>;

/** A usage with every count at zero. */
export function emptyUsage(): Usage {
  // A literal, not usageSchema.parse({}): it is called on hot paths (every addUsage).
  return {
    inputTokens: 0,
    uncachedInputTokens: 0,
    cacheReadTokens: 0,
    cacheWrite5mTokens: 0,
    cacheWrite1hTokens: 0,
    outputTokens: 0,
    reasoningTokens: 0,
  };
}

/** The field-by-field sum of two usages. */
export function addUsage(left: Usage, right: Usage): Usage {
  const sum = emptyUsage();
  for (const key of Object.keys(sum) as (keyof Usage)[]) sum[key] = left[key] + right[key];
  return sum;
}

/**
 * Two usage reports as one (two runs of a task, say): every count added, by repo and by
 * operation too, and dollars only where both sides were priced (a sum with an unpriced side
 * would read as the whole price). The first report's `taskId` is kept.
 *
 * @example
 * const total = addUsageReports(firstRun.report, secondRun.report);
 */
export function addUsageReports(first: UsageReport, second: UsageReport): UsageReport {
  const breakdowns = (left: UsageReport["byRepo"], right: UsageReport["byRepo"]) => {
    const merged = { ...left };
    for (const [name, entry] of Object.entries(right)) {
      const earlier = merged[name];
      merged[name] = !earlier
        ? entry
        : {
            usage: addUsage(earlier.usage, entry.usage),
            totalTokens: earlier.totalTokens + entry.totalTokens,
            ...(earlier.usd !== undefined && entry.usd !== undefined ? { usd: earlier.usd + entry.usd } : {}),
          };
    }
    return merged;
  };
  return {
    ...(first.taskId !== undefined ? { taskId: first.taskId } : {}),
    contextReadTokens: first.contextReadTokens + second.contextReadTokens,
    generationTokens: first.generationTokens + second.generationTokens,
    toolCallTokens: first.toolCallTokens + second.toolCallTokens,
    totalTokens: first.totalTokens + second.totalTokens,
    ...(first.usd !== undefined && second.usd !== undefined ? { usd: first.usd + second.usd } : {}),
    usage: addUsage(first.usage, second.usage),
    byRepo: breakdowns(first.byRepo, second.byRepo),
    byOperation: breakdowns(first.byOperation, second.byOperation),
  };
}

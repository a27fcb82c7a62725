// Internal: the reserve → settle → book loop that every SDK adapter runs around a model call.
import { emptyUsage, type Usage } from "@bulkhead/core";
import { BudgetExceededError } from "../budget-exceeded-error.js";
import type { Budget, Lease } from "../create-budget.js";
import type { Tracker } from "../create-tracker.js";

export interface CallMeterOptions {
  budget: Budget;
  tracker?: Tracker | undefined;
  repo: string;
  operation: string;
  /** Price the usage in the budget and the tracker by the call's model. */
  price: boolean;
}

/** One adapter's bookkeeping around its calls. */
export interface CallMeter {
  /**
   * The output a call may reserve: what it asked for, lowered to what the budget has left after
   * its prompt. Throws {@link BudgetExceededError} when no output fits.
   */
  outputLimit(inputTokens: number, wanted: number): number;
  /** Holds the prompt and the output limit until the call settles. */
  reserve(inputTokens: number, outputLimit: number): Lease;
  /** Settles a call's lease with its usage and records it on the tracker. */
  book(lease: Lease, usage: Usage, model: string): void;
  /** Gives a lease back: the call was not billed. */
  release(lease: Lease): void;
}

/** A usage known only from local counts: the prompt, uncached, and the output counted or reserved. */
export const estimatedUsage = (inputTokens: number, outputTokens: number): Usage => ({
  ...emptyUsage(),
  inputTokens,
  uncachedInputTokens: inputTokens,
  outputTokens,
});

export function createCallMeter({ budget, tracker, repo, operation, price }: CallMeterOptions): CallMeter {
  return {
    outputLimit(inputTokens, wanted) {
      const room = Math.min(budget.available("generation"), budget.available("sessionTotal") - inputTokens);
      const limit = Math.min(wanted, room);
      if (limit <= 0)
        throw new BudgetExceededError({
          budgetId: budget.id,
          kind: "generation",
          requested: wanted,
          available: Math.max(0, room),
          limit: budget.limit("generation") ?? budget.limit("sessionTotal") ?? 0,
        });
      return limit;
    },
    reserve: (inputTokens, outputLimit) => budget.reserve({ amounts: { contextRead: inputTokens, generation: outputLimit } }),
    book(lease, usage, model) {
      const options = price ? { model } : {};
      budget.settle({ lease, spent: usage, ...options });
      if (!tracker) return;
      const span = tracker.startSpan({ repo, operation, ...options });
      try {
        span.record(usage);
      } finally {
        span.end();
      }
    },
    release: (lease) => budget.release(lease),
  };
}

import type { Budget } from "../create-budget.js";

/** Why an agent run metered from its output should stop now, or undefined while it may go on. */
export function stopReason(budget: Budget): "generation" | "session-total" | "usd" | undefined {
  if (budget.limit("usd") !== undefined && (budget.available("usd") <= 0 || budget.unpricedModels.length > 0)) return "usd";
  if (budget.exhausted) return "session-total";
  if (budget.limit("generation") !== undefined && budget.available("generation") <= 0) return "generation";
  return undefined;
}

/**
 * Internal: checks the budget after each booking of an agent run and, the first time it runs out,
 * sets `result.stoppedBy` and calls `onStop` (once).
 */
export function createStopCheck(
  budget: Budget | undefined,
  result: { stoppedBy: "generation" | "session-total" | "usd" | null },
  onStop: ((reason: "generation" | "session-total" | "usd") => void) | undefined,
): () => void {
  return () => {
    if (!budget || result.stoppedBy) return;
    const reason = stopReason(budget);
    if (reason) {
      result.stoppedBy = reason;
      onStop?.(reason);
    }
  };
}

import type { BudgetKind } from "@bulkhead/core";

// The kinds live in core, beside the budget store interface that every store implements.
export { BUDGET_KINDS, type BudgetKind } from "@bulkhead/core";

/**
 * What happens when a kind runs out, at its own enforcement point (seed 000's table):
 * context read is rejected before execution, generation is stopped mid-stream with the partial
 * result kept, tool calls are blocked with a message for the model, the session total forces a
 * handover, and the dollar cap stops further calls.
 */
export const BUDGET_ACTIONS = {
  contextRead: "reject",
  generation: "stop",
  toolCalls: "block-tools",
  sessionTotal: "handover",
  usd: "stop",
} as const satisfies Record<BudgetKind, string>;

export type BudgetAction = (typeof BUDGET_ACTIONS)[BudgetKind];

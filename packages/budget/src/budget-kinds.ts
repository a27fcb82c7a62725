/** Seed 000's four budget kinds, plus an optional dollar cap. */
export const BUDGET_KINDS = ["contextRead", "generation", "toolCalls", "sessionTotal", "usd"] as const;
export type BudgetKind = (typeof BUDGET_KINDS)[number];

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

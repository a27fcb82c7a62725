/** Seed 000's four budget kinds, plus an optional dollar cap. */
export const BUDGET_KINDS = ["contextRead", "generation", "toolCalls", "sessionTotal", "usd"] as const;
export type BudgetKind = (typeof BUDGET_KINDS)[number];

/**
 * The kinds known only late (the session total as calls settle, dollars after a call): once a
 * level's spend of one reaches its limit, that level refuses every further reservation.
 */
export const LATE_BUDGET_KINDS: readonly BudgetKind[] = ["sessionTotal", "usd"];

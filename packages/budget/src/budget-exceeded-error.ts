import { BulkheadError } from "@bulkhead/core";
import type { BudgetKind } from "./budget-kinds.js";

/** A reservation does not fit: the named budget (or a parent) would go over its limit. */
export class BudgetExceededError extends BulkheadError {
  readonly kind: BudgetKind;
  readonly budgetId: string;

  /** `detail` replaces the message when the refusal is not about the amounts (an unknown price). */
  constructor(budgetId: string, kind: BudgetKind, requested: number, available: number, limit: number, detail?: string) {
    super(
      "BUDGET_EXCEEDED",
      detail ??
        `budget "${budgetId}" has ${formatAmount(kind, available)} of ${kind} left of ${formatAmount(kind, limit)}, not the ${formatAmount(kind, requested)} requested: narrow the work or extend the budget`,
      { data: { budgetId, kind, requested, available, limit } },
    );
    this.name = "BudgetExceededError";
    this.kind = kind;
    this.budgetId = budgetId;
  }
}

export function formatAmount(kind: BudgetKind, amount: number): string {
  return kind === "usd" ? `$${amount.toFixed(4)}` : `${Math.round(amount).toLocaleString("en-US")} tokens`;
}

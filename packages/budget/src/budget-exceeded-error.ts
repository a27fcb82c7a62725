import { BulkheadError, errorMarker } from "@bulkhead/core";
import type { BudgetKind } from "./budget-kinds.js";

/** What a {@link BudgetExceededError} carries: which budget refused, which kind, by how much. */
export interface BudgetExceededData {
  /** The budget whose limit refused (this one or a parent). */
  budgetId: string;
  /** The kind that did not fit. */
  kind: BudgetKind;
  /** The amount of that kind the reservation asked for. */
  requested: number;
  /** What was left of that kind at that budget. */
  available: number;
  /** That budget's limit of the kind. */
  limit: number;
}

/** The options of {@link BudgetExceededError}. */
export interface BudgetExceededErrorOptions extends BudgetExceededData {
  /**
   * Replaces the message when the refusal is not about the amounts (an unknown price).
   * @default a message built from the amounts
   */
  detail?: string;
}

/** A reservation does not fit: the named budget (or a parent) would go over its limit. */
export class BudgetExceededError extends BulkheadError<BudgetExceededData> {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("BudgetExceededError");
  readonly kind: BudgetKind;
  readonly budgetId: string;

  constructor({ budgetId, kind, requested, available, limit, detail }: BudgetExceededErrorOptions) {
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

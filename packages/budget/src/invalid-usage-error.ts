import { BulkheadError, errorMarker } from "@bulkhead/core";

/** Token usage is malformed: a negative or non-numeric count, or parts larger than their total. */
export class InvalidUsageError extends BulkheadError<{ source: string; field: string; value: unknown }> {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("InvalidUsageError");

  constructor(source: string, field: string, value: unknown, rule: string) {
    super("INVALID_USAGE", `${source} usage field ${field} is ${JSON.stringify(value) ?? String(value)}: ${rule}`, {
      data: { source, field, value },
    });
    this.name = "InvalidUsageError";
  }
}

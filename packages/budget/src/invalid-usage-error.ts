import { BulkheadError } from "@bulkhead/core";

/** Token usage is malformed: a negative or non-numeric count, or parts larger than their total. */
export class InvalidUsageError extends BulkheadError {
  constructor(source: string, field: string, value: unknown, rule: string) {
    super("INVALID_USAGE", `${source} usage field ${field} is ${JSON.stringify(value) ?? String(value)}: ${rule}`, {
      data: { source, field, value },
    });
    this.name = "InvalidUsageError";
  }
}

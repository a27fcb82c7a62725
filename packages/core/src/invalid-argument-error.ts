import { BulkheadError, type BulkheadErrorOptions } from "./bulkhead-error.js";

/** A public function was called with a bad argument. `parameter` names it. */
export class InvalidArgumentError extends BulkheadError {
  readonly parameter: string;

  constructor(parameter: string, message: string, options: BulkheadErrorOptions = {}) {
    super("INVALID_ARGUMENT", `invalid ${parameter}: ${message}`, {
      ...options,
      data: { parameter, ...options.data },
    });
    this.name = "InvalidArgumentError";
    this.parameter = parameter;
  }
}

import { BulkheadError, errorMarker, type BulkheadErrorOptions } from "./bulkhead-error.js";

/** A public function was called with a bad argument. `parameter` names it. */
export class InvalidArgumentError extends BulkheadError<{ parameter: string; [key: string]: unknown }> {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("InvalidArgumentError");

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

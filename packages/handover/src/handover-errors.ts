import { BulkheadError, errorMarker } from "@bulkhead/core";

/** A handover document could not be read: the message names the line and what was expected. */
export class InvalidHandoverError extends BulkheadError<{ source: string; line: number | undefined; problem: string }> {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("InvalidHandoverError");

  constructor(source: string, problem: string, line?: number) {
    super("INVALID_HANDOVER", `${source}${line === undefined ? "" : `:${line}`}: ${problem}`, { data: { source, line, problem } });
    this.name = "InvalidHandoverError";
  }
}

/** A handover was already consumed; each is consumed once. */
export class HandoverConsumedError extends BulkheadError<{ path: string; by: string; at: string }> {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("HandoverConsumedError");

  constructor(path: string, by: string, at: string) {
    super("HANDOVER_CONSUMED", `handover ${path} was already consumed by ${by} at ${at}: start from the handover that consumer wrote`, {
      data: { path, by, at },
    });
    this.name = "HandoverConsumedError";
  }
}

/** The rendered handover is over its token bound and trimming was not allowed. */
export class HandoverTooLargeError extends BulkheadError<{ tokens: number; maxTokens: number }> {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("HandoverTooLargeError");

  constructor(tokens: number, maxTokens: number) {
    super(
      "HANDOVER_TOO_LARGE",
      `the handover renders to ${tokens} tokens, over maxTokens ${maxTokens}: summarize what was done, or allow trimming`,
      { data: { tokens, maxTokens } },
    );
    this.name = "HandoverTooLargeError";
  }
}

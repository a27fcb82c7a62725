import { BulkheadError } from "@bulkhead/core";

/** A handover document could not be read: the message names the line and what was expected. */
export class InvalidHandoverError extends BulkheadError {
  constructor(source: string, problem: string, line?: number) {
    super("INVALID_HANDOVER", `${source}${line === undefined ? "" : `:${line}`}: ${problem}`, { data: { source, line, problem } });
    this.name = "InvalidHandoverError";
  }
}

/** A handover was already consumed; each is consumed once. */
export class HandoverConsumedError extends BulkheadError {
  constructor(path: string, by: string, at: string) {
    super("HANDOVER_CONSUMED", `handover ${path} was already consumed by ${by} at ${at}: start from the handover that consumer wrote`, {
      data: { path, by, at },
    });
    this.name = "HandoverConsumedError";
  }
}

/** The rendered handover is over its token bound and trimming was not allowed. */
export class HandoverTooLargeError extends BulkheadError {
  constructor(tokens: number, maxTokens: number) {
    super(
      "HANDOVER_TOO_LARGE",
      `the handover renders to ${tokens} tokens, over maxTokens ${maxTokens}: summarize what was done, or allow trimming`,
      { data: { tokens, maxTokens } },
    );
    this.name = "HandoverTooLargeError";
  }
}

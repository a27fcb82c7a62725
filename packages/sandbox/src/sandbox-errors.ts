import { BulkheadError } from "@bulkhead/core";

/** The project config is invalid; `problems` lists every issue found before anything was created. */
export class InvalidProjectError extends BulkheadError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super("INVALID_PROJECT", `invalid sandbox project:\n${problems.map((problem) => `- ${problem}`).join("\n")}`, { data: { problems } });
    this.name = "InvalidProjectError";
    this.problems = problems;
  }
}

/** A required device or GPU runtime is missing; nothing was created. */
export class DeviceUnavailableError extends BulkheadError {
  constructor(what: string, how: string) {
    super("DEVICE_UNAVAILABLE", `${what} is not available on this host: ${how}`, { data: { what } });
    this.name = "DeviceUnavailableError";
  }
}

/** A session step failed; everything the step had created was removed. */
export class SessionError extends BulkheadError {
  readonly step: string;

  constructor(step: string, message: string, cause?: unknown) {
    super("SESSION_FAILED", `${step}: ${message}`, { cause, data: { step } });
    this.name = "SessionError";
    this.step = step;
  }
}

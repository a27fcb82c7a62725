import { BulkheadError, errorMarker, type SandboxFault } from "@bulkhead/core";

/** The project config is invalid; `problems` lists every issue found before anything was created. */
export class InvalidProjectError extends BulkheadError {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("InvalidProjectError");

  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super("INVALID_PROJECT", `invalid sandbox project:\n${problems.map((problem) => `- ${problem}`).join("\n")}`, { data: { problems } });
    this.name = "InvalidProjectError";
    this.problems = problems;
  }
}

/** A required device or GPU runtime is missing; nothing was created. */
export class DeviceUnavailableError extends BulkheadError {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("DeviceUnavailableError");

  constructor(what: string, how: string) {
    super("DEVICE_UNAVAILABLE", `${what} is not available on this host: ${how}`, { data: { what } });
    this.name = "DeviceUnavailableError";
  }
}

/** A session step failed; everything the step had created was removed. */
export class SessionError extends BulkheadError {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("SessionError");

  readonly step: string;

  constructor(step: string, message: string, cause?: unknown, data: Record<string, unknown> = {}) {
    super("SESSION_FAILED", `${step}: ${message}`, { cause, data: { step, ...data } });
    this.name = "SessionError";
    this.step = step;
  }
}

/**
 * The session's container no longer exists: it was removed outside bulkhead (`docker rm`). The
 * workspace is still on disk; `session.remove({ force: true })` or `gc({ missing: true })` clears it.
 */
export class SessionContainerMissingError extends SessionError {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("SessionContainerMissingError");

  constructor(step: string, sessionId: string, cause?: unknown) {
    super(
      step,
      `the container of session ${sessionId} (bulkhead-${sessionId}) no longer exists: it was removed outside bulkhead; ` +
        "its workspace is kept: fetch what you need, then session.remove({ force: true }) or gc({ missing: true })",
      cause,
      { fault: "container-missing", sessionId },
    );
    this.name = "SessionContainerMissingError";
  }
}

/**
 * The session's container is paused and nothing in bulkhead holds the pause (paused outside
 * bulkhead, or a pause whose holder is still alive for longer than the call could wait).
 */
export class SessionPausedError extends SessionError {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("SessionPausedError");

  constructor(step: string, sessionId: string, detail: string, cause?: unknown) {
    super(step, `the container of session ${sessionId} is paused (${detail})`, cause, { fault: "container-paused", sessionId });
    this.name = "SessionPausedError";
  }
}

/** The Docker engine does not answer (stopped, restarting, or `DOCKER_HOST` names another one). */
export class EngineUnavailableError extends SessionError {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("EngineUnavailableError");

  constructor(step: string, detail: string, cause?: unknown) {
    super(
      step,
      `the Docker engine does not answer (${detail}): check that dockerd runs and that DOCKER_HOST names it, then call again; ` +
        "the session's workspace and state are kept",
      cause,
      { fault: "engine-unavailable" },
    );
    this.name = "EngineUnavailableError";
  }
}

/** The session's workspace uses more host disk than `resources.diskMb`; its jobs were stopped. */
export class DiskLimitError extends SessionError {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("DiskLimitError");

  readonly usedBytes: number;
  readonly limitBytes: number;

  constructor(step: string, sessionId: string, usedBytes: number, limitBytes: number) {
    super(
      step,
      `the workspace of session ${sessionId} uses ${Math.ceil(usedBytes / 2 ** 20)} MiB, over resources.diskMb ${limitBytes / 2 ** 20}: ` +
        "its running jobs were stopped and nothing is harvested from it; free space inside the session (session.exec) or raise resources.diskMb",
      undefined,
      { fault: "disk-limit", sessionId, usedBytes, limitBytes },
    );
    this.name = "DiskLimitError";
    this.usedBytes = usedBytes;
    this.limitBytes = limitBytes;
  }
}

/** A file the agent wrote is larger than the host reads in one piece; nothing of it was read. */
export class WorkspaceFileTooLargeError extends SessionError {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("WorkspaceFileTooLargeError");

  readonly sizeBytes: number;
  readonly maxBytes: number;

  constructor(step: string, path: string, sizeBytes: number, maxBytes: number) {
    super(
      step,
      `${path} is ${sizeBytes} bytes, over the ${maxBytes}-byte read limit: nothing of it was read; pass a larger maxBytes if you mean to read it`,
      undefined,
      { fault: "file-too-large", path, sizeBytes, maxBytes },
    );
    this.name = "WorkspaceFileTooLargeError";
    this.sizeBytes = sizeBytes;
    this.maxBytes = maxBytes;
  }
}

/**
 * Turns an error from a backend call about a session's container into the typed error it means,
 * from the backend's own reading of it (`backend.faultOf(error)`): a missing container, a paused
 * one, an engine that does not answer; anything else becomes a plain {@link SessionError} of
 * `step`. Errors that are already bulkhead's pass through.
 */
export function sessionFault(error: unknown, step: string, sessionId: string, fault: SandboxFault | undefined): Error {
  if (BulkheadError.isInstance(error)) return error;
  const message = (error as { message?: string } | undefined)?.message ?? String(error);
  if (fault === "missing") return new SessionContainerMissingError(step, sessionId, error);
  if (fault === "paused")
    return new SessionPausedError(step, sessionId, "unpause it with session.start(), or wait for the read that paused it", error);
  if (fault === "engine-unavailable")
    return new EngineUnavailableError(step, `${(error as { code?: string }).code ?? "no answer"}: ${message}`, error);
  return new SessionError(step, message, error);
}

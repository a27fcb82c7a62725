import { BulkheadError, errorMarker } from "./bulkhead-error.js";

/** One reason a resolved scope cannot be used as it is. */
export type ScopeViolation =
  | {
      kind: "max-files";
      limit: number;
      /** The files in scope; an estimate (some listed from their size) when `counted` is present. */
      actual: number;
      /** Present when counting stopped at the limit: the files read, already over the limit. */
      counted?: number;
      message: string;
    }
  | {
      kind: "max-tokens";
      limit: number;
      /** The scope's tokens; an estimate (uncounted files at 4 bytes a token) when `counted` is present. */
      actual: number;
      /** Present when counting stopped at the limit: the tokens counted exactly, already over the limit. */
      counted?: number;
      message: string;
    }
  | { kind: "path-not-found"; repo: string; path: string; message: string };

/** A heavy part of a scope, reported so the caller knows what to narrow. */
export interface ScopeHotspot {
  repo: string;
  path: string;
  files: number;
  tokens: number;
}

/**
 * A resolved scope is over its limits or names missing paths; `data` says how to narrow it. With
 * `estimated` (`data.estimated`), counting stopped once a limit was certainly exceeded and the
 * largest parts were ranked on exact counts for the files read and sizes for the rest.
 */
export class ScopeLimitError extends BulkheadError<{
  violations: readonly ScopeViolation[];
  largestDirectories: readonly ScopeHotspot[];
  largestFiles: readonly ScopeHotspot[];
  estimated: boolean;
}> {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("ScopeLimitError");

  readonly violations: readonly ScopeViolation[];
  readonly largestDirectories: readonly ScopeHotspot[];
  readonly largestFiles: readonly ScopeHotspot[];
  /** True when the largest parts come partly from file sizes (counting stopped at the limit). */
  readonly estimated: boolean;

  constructor(
    violations: readonly ScopeViolation[],
    largestDirectories: readonly ScopeHotspot[],
    largestFiles: readonly ScopeHotspot[],
    { estimated = false }: { estimated?: boolean } = {},
  ) {
    const about = estimated ? " (estimated: counting stopped at the limit)" : "";
    const advice = [
      ...violations.map((violation) => violation.message),
      largestDirectories.length > 0 && `largest directories${about}: ${largestDirectories.map(formatHotspot).join(", ")}`,
      largestFiles.length > 0 && `largest files${about}: ${largestFiles.map(formatHotspot).join(", ")}`,
    ].filter(Boolean);
    super("SCOPE_LIMIT", advice.join("\n"), { data: { violations, largestDirectories, largestFiles, estimated } });
    this.name = "ScopeLimitError";
    this.violations = violations;
    this.largestDirectories = largestDirectories;
    this.largestFiles = largestFiles;
    this.estimated = estimated;
  }
}

function formatHotspot(spot: ScopeHotspot): string {
  const files = spot.files === 1 ? "" : `, ${spot.files.toLocaleString("en-US")} files`;
  return `${spot.repo}/${spot.path} (${spot.tokens.toLocaleString("en-US")} tokens${files})`;
}

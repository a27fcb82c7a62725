import { BulkheadError, errorMarker } from "./bulkhead-error.js";

/** One reason a resolved scope cannot be used as it is. */
export type ScopeViolation =
  | { kind: "max-files"; limit: number; actual: number; message: string }
  | { kind: "max-tokens"; limit: number; actual: number; message: string }
  | { kind: "path-not-found"; repo: string; path: string; message: string };

/** A heavy part of a scope, reported so the caller knows what to narrow. */
export interface ScopeHotspot {
  repo: string;
  path: string;
  files: number;
  tokens: number;
}

/** A resolved scope is over its limits or names missing paths; `data` says how to narrow it. */
export class ScopeLimitError extends BulkheadError<{
  violations: readonly ScopeViolation[];
  largestDirectories: readonly ScopeHotspot[];
  largestFiles: readonly ScopeHotspot[];
}> {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("ScopeLimitError");

  readonly violations: readonly ScopeViolation[];
  readonly largestDirectories: readonly ScopeHotspot[];
  readonly largestFiles: readonly ScopeHotspot[];

  constructor(violations: readonly ScopeViolation[], largestDirectories: readonly ScopeHotspot[], largestFiles: readonly ScopeHotspot[]) {
    const advice = [
      ...violations.map((violation) => violation.message),
      largestDirectories.length > 0 && `largest directories: ${largestDirectories.map(formatHotspot).join(", ")}`,
      largestFiles.length > 0 && `largest files: ${largestFiles.map(formatHotspot).join(", ")}`,
    ].filter(Boolean);
    super("SCOPE_LIMIT", advice.join("\n"), { data: { violations, largestDirectories, largestFiles } });
    this.name = "ScopeLimitError";
    this.violations = violations;
    this.largestDirectories = largestDirectories;
    this.largestFiles = largestFiles;
  }
}

function formatHotspot(spot: ScopeHotspot): string {
  const files = spot.files === 1 ? "" : `, ${spot.files.toLocaleString("en-US")} files`;
  return `${spot.repo}/${spot.path} (${spot.tokens.toLocaleString("en-US")} tokens${files})`;
}

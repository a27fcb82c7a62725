// The public API of @bulkhead/sandbox. This package is a skeleton until its own issue lands;
// it re-exports the core vocabulary it will build on so the package installs and imports today.
export type { BulkheadErrorCode } from "@bulkhead/core";

/** The package's name and version, for diagnostics. */
export const packageInfo = { name: "@bulkhead/sandbox", version: "0.1.0" } as const;

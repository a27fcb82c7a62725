// Replaced by the build (tsup `define`, from package.json) and by the test config (vitest.config.ts).
declare const __BULKHEAD_VERSION__: string | undefined;

/** This package's version, from its package.json at build time. */
export const VERSION: string = typeof __BULKHEAD_VERSION__ === "string" ? __BULKHEAD_VERSION__ : "0.0.0-source";

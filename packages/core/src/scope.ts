// `@bulkhead/core/scope`: scope resolution without zod or yaml, for a caller whose start-up time
// matters (the `bulkhead` command line resolves a cached scope in well under the time core's
// full entry takes to load). Everything here but `resolveValidatedScope` is in the main entry too;
// `resolveValidatedScope` skips option validation and is not a public API.
export { BulkheadError } from "./bulkhead-error.js";
export { createScopeCache, readChecksummedJson, writeChecksummedJson, type ScopeCache } from "./scope-cache.js";
export { ScopeLimitError } from "./scope-limit-error.js";
export { resolveValidatedScope } from "./scope-resolver.js";
export { suggestNarrowing, type NarrowingAdvice } from "./suggest-narrowing.js";
export type { ResolvedScope, ResolveScopeOptions, ScopeFile } from "./resolve-scope.js";
export type { TaskSpec } from "./task-spec.js";
export type { TokenCounter } from "./token-counter.js";

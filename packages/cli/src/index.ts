// The public API of @bulkhead/cli: the command runner, for embedding and tests.
export { main, type MainOptions } from "./main.js";
export { dispatch, finish, harvestSession, type Reporter } from "./composites.js";
export { harvest, HarvestError, type HarvestOptions, type HarvestResult } from "./harvest.js";
export { unifiedDiff } from "./unified-diff.js";

// The public API of @bulkhead/cli: the command runner, for embedding and tests.
export { main, type MainOptions } from "./main.js";
export { dispatch, finish, harvest, HarvestError, type Reporter } from "./composites.js";

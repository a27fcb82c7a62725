// The public API of @bulkhead/cli: the command runner, for embedding and tests.
export { main, type MainOptions } from "./main.js";

// The public API of @bulkhead/postgres: one deliberate list.
export { createPostgresBudgetStore } from "./postgres-budget-store.js";
export { createPostgresWorkHookStore } from "./postgres-work-hook-store.js";
export { isUnavailable, type PostgresStoreOptions } from "./postgres-connection.js";

// The public API of @bulkhead/postgres: one deliberate list.
export { createStore, type PostgresStores } from "./create-store.js";
export { createPostgresBudgetStore } from "./postgres-budget-store.js";
export { isUnavailable, type PostgresStoreOptions } from "./postgres-connection.js";
export { createPostgresLandingLock, type HeldLandingLock } from "./postgres-landing-lock.js";
export { createPostgresMemoryStore } from "./postgres-memory-store.js";
export { createPostgresProposalStore } from "./postgres-proposal-store.js";
export { createPostgresSessionRegistry } from "./postgres-session-registry.js";
export { createPostgresWorkHookStore } from "./postgres-work-hook-store.js";

// The unified diff a proposal holds lives in core (the guard, the lead and harvest share it).
export { unifiedDiff } from "@bulkhead/core";

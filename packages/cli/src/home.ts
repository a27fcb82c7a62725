import { homedir } from "node:os";
import { join } from "node:path";

/**
 * The command line's home: `$BULKHEAD_HOME`, else `~/.bulkhead` (the same default as
 * `@bulkhead/sandbox`'s session home). Caches, proposals and the gateway directories live there.
 * A module of its own with no imports beyond Node's, so a warm `scope resolve` loads nothing more.
 */
export const bulkheadHome = (): string => process.env.BULKHEAD_HOME ?? join(homedir(), ".bulkhead");

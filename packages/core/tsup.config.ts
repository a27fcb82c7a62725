import { packageConfig } from "../../tsup.base.ts";

// Two entries: the package, and `@bulkhead/core/scope` (scope resolution without zod or yaml, for
// the command line's start-up); shared code goes to chunks, so both see one BulkheadError.
export default packageConfig({ entry: ["src/index.ts", "src/scope.ts"] });

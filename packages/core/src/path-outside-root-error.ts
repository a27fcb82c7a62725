import { BulkheadError } from "./bulkhead-error.js";

/** A path given by a user resolves outside the root it must stay in. */
export class PathOutsideRootError extends BulkheadError {
  constructor(path: string, root: string, reason: string) {
    super("PATH_OUTSIDE_ROOT", `path "${path}" ${reason}: it must stay inside ${root}`, {
      data: { path, root, reason },
    });
    this.name = "PathOutsideRootError";
  }
}

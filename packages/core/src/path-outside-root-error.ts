import { BulkheadError, errorMarker } from "./bulkhead-error.js";

/** A path given by a user resolves outside the root it must stay in. */
export class PathOutsideRootError extends BulkheadError<{ path: string; root: string; reason: string }> {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("PathOutsideRootError");

  constructor(path: string, root: string, reason: string) {
    super("PATH_OUTSIDE_ROOT", `path "${path}" ${reason}: it must stay inside ${root}`, {
      data: { path, root, reason },
    });
    this.name = "PathOutsideRootError";
  }
}

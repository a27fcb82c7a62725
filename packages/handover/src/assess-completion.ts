import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { InvalidArgumentError, normalizeRepoPath } from "@bulkhead/core";
import { changesSince, git } from "./git.js";

/** A file the task was expected to create, modify or delete. */
export interface ExpectedChange {
  repo: string;
  path: string;
  change: "create" | "modify" | "delete";
}

/** Where the task stands against what it was expected to do. */
export interface CompletionAssessment {
  done: ExpectedChange[];
  /** Expected but not (yet) true in the repository, with why. */
  missing: (ExpectedChange & { reason: string })[];
  /** Changed, but not among the expected files. */
  unexpected: { repo: string; path: string; change: "added" | "modified" | "deleted" }[];
}

/** Content hash with line endings normalized, so a CRLF-only rewrite is not a change. */
function contentHash(bytes: Buffer | string): string {
  const text = typeof bytes === "string" ? bytes : bytes.toString("utf8");
  return createHash("sha256").update(text.replaceAll("\r\n", "\n")).digest("hex");
}

/**
 * Compares the expected files with the repositories' real state since `base`: content hashes
 * (line endings normalized), never modification times. A file to create must now exist and not
 * have existed at the base; to modify, exist in both with different content; to delete, exist
 * at the base and not now. Everything else that changed is `unexpected`.
 *
 * @example
 * const assessment = await assessCompletion({ expected: spec.expectedFiles.map(...), repos, base });
 */
export async function assessCompletion({
  expected,
  repos,
  base,
}: {
  expected: readonly ExpectedChange[];
  repos: Record<string, string>;
  base: Record<string, string>;
}): Promise<CompletionAssessment> {
  const assessment: CompletionAssessment = { done: [], missing: [], unexpected: [] };
  for (const item of expected) {
    const dir = repos[item.repo];
    const from = base[item.repo];
    if (dir === undefined || from === undefined)
      throw new InvalidArgumentError("repos", `no directory or base commit for repo "${item.repo}"`);
    const path = normalizeRepoPath(item.path);
    if (!path.ok) throw new InvalidArgumentError("expected", `path "${item.path}" ${path.reason}`);
    const before = await git(dir, ["show", `${from}:${path.path}`], { allowFailure: true });
    const now = await readFile(join(dir, path.path)).catch(() => undefined);
    const entry = { ...item, path: path.path };
    let reason: string | undefined;
    if (item.change === "create")
      reason = now === undefined ? "does not exist yet" : before !== undefined ? "already existed at the base" : undefined;
    else if (item.change === "delete")
      reason = before === undefined ? "did not exist at the base" : now !== undefined ? "still exists" : undefined;
    else
      reason =
        before === undefined
          ? "did not exist at the base"
          : now === undefined
            ? "was deleted"
            : contentHash(before) === contentHash(now)
              ? "is unchanged (line endings aside)"
              : undefined;
    if (reason) assessment.missing.push({ ...entry, reason });
    else assessment.done.push(entry);
  }
  for (const [repo, dir] of Object.entries(repos)) {
    const from = base[repo];
    if (from === undefined) continue;
    for (const change of await changesSince(dir, from)) {
      if (
        !expected.some(
          (item) =>
            item.repo === repo &&
            normalizeRepoPath(item.path).ok &&
            (normalizeRepoPath(item.path) as { path: string }).path === change.path,
        )
      ) {
        assessment.unexpected.push({ repo, path: change.path, change: change.change });
      }
    }
  }
  return assessment;
}

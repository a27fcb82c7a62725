import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { InvalidArgumentError, normalizeRepoPath, type ChangedPath } from "@bulkhead/core";
import { repoChangeSets, type ChangeSetInput } from "./change-set-input.js";
import { trustedChangesSince, trustedGit } from "./git.js";

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

/** The git blob id of bytes. */
function blobOid(bytes: Uint8Array): string {
  return createHash("sha1").update(`blob ${bytes.byteLength}\0`).update(bytes).digest("hex");
}

/** Why an expected change is not true in a change set, or undefined when it is. */
function missingIn(item: ExpectedChange, changed: ChangedPath | undefined): string | undefined {
  if (!changed) return item.change === "create" ? "does not exist yet, or existed at the base unchanged" : "is unchanged since the base";
  if (item.change === "create")
    return changed.kind === "added" ? undefined : changed.kind === "deleted" ? "was deleted" : "already existed at the base";
  if (item.change === "delete")
    return changed.kind === "deleted" ? undefined : changed.kind === "added" ? "did not exist at the base" : "still exists";
  if (changed.kind === "added") return "did not exist at the base";
  if (changed.kind === "deleted") return "was deleted";
  // A CRLF-only rewrite of a file stored with LF endings is not a change.
  if (changed.entry?.type === "file" && changed.base) {
    const normalized = Buffer.from(changed.entry.bytes).toString("utf8").replaceAll("\r\n", "\n");
    if (blobOid(Buffer.from(normalized, "utf8")) === changed.base.oid) return "is unchanged (line endings aside)";
  }
  return undefined;
}

/**
 * Compares the expected files with what the task really changed: from the session's change set
 * (`changes`: data only, nothing read from the agent's clone, no git), or from TRUSTED
 * repositories (`repos` with `base`: the user's own, read with git; never an agent's clone). By
 * content, never modification times. A file to create must now exist and not have existed at the
 * base; to modify, exist in both with different content (line endings aside); to delete, exist
 * at the base and not now. Everything else that changed is `unexpected`.
 *
 * @example
 * const assessment = await assessCompletion({ expected: spec.expectedFiles.map(...), changes: await session.changes() });
 */
export async function assessCompletion({
  expected,
  changes,
  repos,
  base,
}: {
  expected: readonly ExpectedChange[];
  /** The session's change set (or parts of it). Give `changes`, or `repos` with `base`. */
  changes?: ChangeSetInput;
  /** TRUSTED repositories only: repo name → directory, read with git. */
  repos?: Record<string, string>;
  /** With `repos`: repo name → the commit the task started from. */
  base?: Record<string, string>;
}): Promise<CompletionAssessment> {
  if ((changes === undefined) === (repos === undefined))
    throw new InvalidArgumentError(
      "changes",
      "pass the session's changes (session.changes()), or repos with base for trusted repositories; not both",
    );
  const assessment: CompletionAssessment = { done: [], missing: [], unexpected: [] };
  const expectedPath = (item: ExpectedChange) => {
    const path = normalizeRepoPath(item.path);
    if (!path.ok) throw new InvalidArgumentError("expected", `path "${item.path}" ${path.reason}`);
    return path.path;
  };
  if (changes !== undefined) {
    const byRepo = new Map(
      repoChangeSets(changes, "changes").map((repo) => [repo.repo, new Map(repo.paths.map((path) => [path.path, path]))]),
    );
    for (const item of expected) {
      const paths = byRepo.get(item.repo);
      if (!paths) throw new InvalidArgumentError("changes", `the change set has no repo "${item.repo}"`);
      const entry = { ...item, path: expectedPath(item) };
      const reason = missingIn(item, paths.get(entry.path));
      if (reason) assessment.missing.push({ ...entry, reason });
      else assessment.done.push(entry);
    }
    for (const [repo, paths] of byRepo) {
      for (const path of paths.values())
        if (!expected.some((item) => item.repo === repo && expectedPath(item) === path.path))
          assessment.unexpected.push({ repo, path: path.path, change: path.kind });
    }
    return assessment;
  }
  for (const item of expected) {
    const dir = repos![item.repo];
    const from = base?.[item.repo];
    if (dir === undefined || from === undefined)
      throw new InvalidArgumentError("repos", `no directory or base commit for repo "${item.repo}"`);
    const path = expectedPath(item);
    const before = await trustedGit(dir, ["show", `${from}:${path}`], { allowFailure: true });
    const now = await readFile(join(dir, path)).catch(() => undefined);
    const entry = { ...item, path };
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
  for (const [repo, dir] of Object.entries(repos!)) {
    const from = base?.[repo];
    if (from === undefined) continue;
    for (const change of await trustedChangesSince(dir, from)) {
      if (!expected.some((item) => item.repo === repo && normalizeRepoPath(item.path).ok && expectedPath(item) === change.path))
        assessment.unexpected.push({ repo, path: change.path, change: change.change });
    }
  }
  return assessment;
}

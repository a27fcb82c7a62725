import { resolve } from "node:path";
import {
  createScopeMatcher,
  normalizeRepoPath,
  unifiedDiff,
  type ChangedPath,
  type GitFileMode,
  type MultiRepoGuard,
} from "@bulkhead/core";
import type { ObjectStore } from "./object-store.js";
import type { QueueEntry } from "./submission.js";

/** A path a commit may hold: normalized, inside the repo, and nowhere in a `.git` directory. */
export function checkRepoPath(path: string): { ok: true; path: string } | { ok: false; reason: string } {
  const normalized = normalizeRepoPath(path);
  if (!normalized.ok) return normalized;
  if (normalized.path === "." || normalized.path.split("/").some((segment) => segment.toLowerCase() === ".git"))
    return { ok: false, reason: "is not a file inside the repo" };
  return normalized;
}

/**
 * A change-set path as git stores it: any bytes but NUL (newlines and unicode are fine), no empty,
 * `.` or `..` component, not absolute, and nowhere in a `.git` directory.
 */
export function checkChangeSetPath(path: string): { ok: true; path: string } | { ok: false; reason: string } {
  if (path.length === 0 || path.length > 4096) return { ok: false, reason: "is empty or longer than 4096 characters" };
  if (path.includes("\0")) return { ok: false, reason: "contains a NUL byte" };
  const segments = path.split("/");
  if (segments.some((segment) => segment === "" || segment === "." || segment === ".."))
    return { ok: false, reason: "is not normalized (an empty, '.' or '..' component, or a leading or trailing '/')" };
  if (segments.some((segment) => segment.toLowerCase() === ".git")) return { ok: false, reason: "is not a file inside the repo" };
  return { ok: true, path };
}

/**
 * The submission's paths, normalized and deduplicated, or why it is refused: a path outside the
 * repo or into `.git`, a change-set path that is not in git's normal form, a path that is both a
 * file and a directory, a path outside the worker's manifest.
 */
export function checkPaths(entry: QueueEntry): { ok: true; paths: string[] } | { ok: false; reason: string } {
  const paths: string[] = [];
  for (const file of entry.files ?? entry.changes?.map((change) => change.path) ?? []) {
    const checked = entry.changes ? checkChangeSetPath(file) : checkRepoPath(file);
    if (!checked.ok) return { ok: false, reason: `file ${JSON.stringify(file)} ${checked.reason}` };
    if (!paths.includes(checked.path)) paths.push(checked.path);
    else if (entry.changes) return { ok: false, reason: `change-set path "${file}" is listed twice` };
  }
  const written = new Set((entry.changes ?? []).filter((change) => !change.deleted).map((change) => change.path));
  for (const path of written) {
    for (let slash = path.indexOf("/"); slash !== -1; slash = path.indexOf("/", slash + 1)) {
      if (written.has(path.slice(0, slash)))
        return { ok: false, reason: `change set writes both "${path.slice(0, slash)}" and "${path}" below it` };
    }
  }
  if (entry.manifest) {
    const allowed = createScopeMatcher(
      entry.manifest.map((path) => normalizeRepoPath(path)).flatMap((path) => (path.ok ? [path.path] : [])),
      [],
    );
    const outside = paths.filter((path) => !allowed(path));
    if (outside.length > 0) return { ok: false, reason: `files outside ${entry.worker}'s manifest: ${outside.join(", ")}` };
  }
  return { ok: true, paths };
}

/**
 * Asks the guard about every path, with a unified diff against the branch tip and the whole new
 * content (read from the lead's own object store, never from a working tree), and where an
 * approval lands. Returns the proposals it holds (pending, or refused as rejected before).
 */
export async function proposeToGuard(
  guard: Pick<MultiRepoGuard, "propose">,
  {
    repo,
    worker,
    store,
    changes,
    base,
  }: {
    repo: string;
    worker: string;
    store: ObjectStore;
    changes: ReadonlyMap<string, { oid: string; mode?: string } | null>;
    /** Where an approval lands: the lead's repository, its branch and tip, and the issue. */
    base?: { source: string; branch: string; sha: string | undefined; issueId: string };
  },
): Promise<{ file: string; proposalId: string }[]> {
  const held: { file: string; proposalId: string }[] = [];
  const tree = base?.sha ? await store.commitTree(base.sha) : undefined;
  for (const [path, change] of changes) {
    // A unified diff against the branch tip, and the whole change kept for applying the approval.
    const before = tree ? await store.entryAt(tree, path) : undefined;
    const beforeMode = before && ["100644", "100755", "120000"].includes(before.mode) ? (before.mode as GitFileMode) : undefined;
    const beforeBytes = beforeMode && beforeMode !== "120000" ? await store.readBlob(before!.oid) : undefined;
    const afterBytes = change === null ? undefined : await store.readBlob(change.oid);
    const link = change?.mode === "120000" ? afterBytes!.toString("utf8") : undefined;
    const changed: ChangedPath = {
      path,
      kind: change === null ? "deleted" : beforeMode ? "modified" : "added",
      ...(change === null
        ? {}
        : {
            entry:
              link !== undefined
                ? { type: "link" as const, mode: "120000" as const, target: link, oid: change.oid }
                : {
                    type: "file" as const,
                    mode: change.mode === "100755" ? ("100755" as const) : ("100644" as const),
                    bytes: afterBytes!,
                    oid: change.oid,
                  },
          }),
      ...(beforeMode ? { base: { mode: beforeMode, oid: before!.oid } } : {}),
    };
    const outcome = await guard.propose({
      repo,
      file: path,
      diff: unifiedDiff({
        path,
        before: beforeBytes,
        after: link === undefined ? afterBytes : undefined,
        beforeOid: before?.oid,
        afterOid: change?.oid,
        link,
      }),
      author: worker,
      change: changed,
      ...(base?.sha ? { target: { source: resolve(base.source), branch: base.branch, baseSha: base.sha, issueId: base.issueId } } : {}),
    });
    // Pending, or refused because a person rejected this change before: never committed.
    if (outcome.status !== "allowed") held.push({ file: path, proposalId: outcome.id });
  }
  return held;
}

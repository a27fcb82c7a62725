import type { ChangeSet } from "@bulkhead/core";
import { throwIfAborted, validateOptions } from "@bulkhead/core";
import { z } from "zod";
import { gitCommonDir } from "./git.js";
import { withSessionPaused } from "./pause-session.js";
import { MAX_CHANGED_FILE_BYTES, readBaseTree, readRepoChanges, type RepoChanges, type TreeEntry } from "./read-changes.js";
import { SessionError } from "./sandbox-errors.js";
import type { Session } from "./session.js";
import type { SessionState } from "./session-state-store.js";

/** Options of `session.changes()`. */
export interface ChangesOptions {
  /**
   * Read the working tree of this worktree job (`inject(..., { worktree: true })`) instead of the
   * session's own clones. @default the session's own clones
   */
  readonly job?: string;
  /** Files over this size are listed in `skipped`, not read. @default 64 MiB ({@link MAX_CHANGED_FILE_BYTES}) */
  readonly maxFileBytes?: number;
  /** Checked before the read and before each repo; an abort throws `AbortedError` (the container is unpaused). @default no signal */
  readonly abortSignal?: AbortSignal;
}

const changesOptionsSchema = z
  .object({
    job: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "expected a job id")
      .optional(),
    maxFileBytes: z
      .number()
      .int()
      .positive()
      .max(1024 * 1024 * 1024)
      .optional(),
    abortSignal: z.instanceof(AbortSignal).optional(),
  })
  .strict();

/** One directory of the workspace that holds a repo: the session's clone, or a job's worktree. */
export interface ChangeTarget {
  readonly repo: SessionState["repos"][number];
  readonly branch: string;
  /** Relative to the workspace. */
  readonly path: string;
  /** The ref in the source repo that `fetchCode` writes. */
  readonly ref: string;
  /** The job whose worktree it is. */
  readonly job?: string;
}

/** The session's clone of every repo, then each worktree job's copy, with the ref each is fetched to. */
export function changeTargets(session: Session): ChangeTarget[] {
  return session.state.repos
    .filter((entry) => entry.mode === "clone")
    .flatMap((repo) => [
      { repo, branch: repo.branch, path: repo.name, ref: `refs/bulkhead/${session.id}/${session.id}` },
      ...session.state.jobs
        .filter((job) => job.worktree)
        .map((job) => ({
          repo,
          branch: job.worktree!.branch,
          path: `${job.worktree!.path}/${repo.name}`,
          ref: `refs/bulkhead/${session.id}/${job.id}`,
          job: job.id,
        })),
    ]);
}

/**
 * Reads targets of a session's workspace, all in one pause of its container (released again
 * even when reading fails), with each base tree read once from the trusted source repository.
 */
export async function readTargets(
  session: Session,
  targets: readonly ChangeTarget[],
  { maxFileBytes = MAX_CHANGED_FILE_BYTES, abortSignal }: { maxFileBytes?: number; abortSignal?: AbortSignal | undefined } = {},
): Promise<{ target: ChangeTarget; changes: RepoChanges; sourceGitdir: string; base: Map<string, TreeEntry> }[]> {
  throwIfAborted(abortSignal, "changes");
  // Nothing to read: no pause either.
  if (targets.length === 0) return [];
  // The trusted side first, outside the pause: the base trees come from the source repos.
  const bases = new Map<string, Promise<{ tree: Map<string, TreeEntry>; gitdir: string }>>();
  const baseOf = (repo: SessionState["repos"][number]) => {
    const key = `${repo.source}\0${repo.baseSha}`;
    if (!bases.has(key))
      bases.set(
        key,
        Promise.all([readBaseTree(repo.source, repo.baseSha), gitCommonDir(repo.source)]).then(([tree, gitdir]) => ({ tree, gitdir })),
      );
    return bases.get(key)!;
  };
  const prepared = await Promise.all(targets.map(async (target) => ({ target, ...(await baseOf(target.repo)) })));
  throwIfAborted(abortSignal, "changes");
  return withSessionPaused(session, async () => {
    const read = [];
    for (const { target, tree, gitdir } of prepared) {
      throwIfAborted(abortSignal, "changes");
      try {
        const changes = await readRepoChanges({
          repo: target.repo.name,
          branch: target.branch,
          baseSha: target.repo.baseSha,
          source: target.repo.source,
          sourceGitdir: gitdir,
          workspace: session.state.workspace,
          path: target.path,
          maxFileBytes,
          baseTree: tree,
        });
        read.push({ target, changes, sourceGitdir: gitdir, base: tree });
      } catch (error) {
        throw new SessionError(
          "changes",
          `could not read ${target.path} in ${session.state.workspace}: ${(error as Error).message}`,
          error,
        );
      }
    }
    return read;
  });
}

/** Strips what only the producer needs (the workspace's full listing) from a repo's changes. */
export function toRepoChangeSet({ entries: _entries, ...repoChangeSet }: RepoChanges): ChangeSet["repos"][number] {
  return repoChangeSet;
}

/** `session.changes()`: see {@link Session.changes}. */
export async function readSessionChanges(session: Session, options: ChangesOptions = {}): Promise<ChangeSet> {
  const { job, maxFileBytes, abortSignal } = validateOptions(changesOptionsSchema, options, "options");
  if (job !== undefined && !session.state.jobs.some((record) => record.id === job && record.worktree))
    throw new SessionError("changes", `session ${session.id} has no worktree job "${job}": see session.jobs()`);
  const targets = changeTargets(session).filter((target) => target.job === job);
  const readAt = new Date().toISOString();
  const read = await readTargets(session, targets, { ...(maxFileBytes ? { maxFileBytes } : {}), abortSignal });
  return { sessionId: session.id, readAt, repos: read.map(({ changes }) => toRepoChangeSet(changes)) };
}

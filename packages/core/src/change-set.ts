/**
 * What an agent changed in a session, as data: the one value that crosses the trust boundary
 * inward. `@bulkhead/sandbox` produces it (`session.changes()`) by reading the workspace as
 * hostile bytes (files opened without following links, git objects read by a reader that runs
 * nothing, every hash recomputed, "what changed" decided by content against the base tree, never
 * by the agent's index or stat data). The guard, the lead, the handover and `fetchCode` consume
 * it; none of them reads the workspace again.
 *
 * Paths are repo-relative, `/`-separated, normalized (no `.`, `..` or empty components), exactly
 * as git would store them (any byte but NUL and `/`, so newlines and unicode are allowed).
 */

/** How one path differs from the base tree. */
export type ChangeKind = "added" | "modified" | "deleted";

/** One changed path of one repo. */
export interface ChangedPath {
  /** Repo-relative path, normalized. */
  readonly path: string;
  /** Against the base commit's tree. */
  readonly kind: ChangeKind;
  /**
   * What the path holds now: a regular file (with its executable bit), or a symbolic link
   * (its target, as bytes; never followed). Absent when `kind` is `"deleted"`.
   */
  readonly entry?: ChangedEntry;
  /** What the path held in the base tree, when it existed there. */
  readonly base?: { readonly mode: GitFileMode; readonly oid: string };
}

/** The git file modes a change set carries (no submodules, no directories). */
export type GitFileMode = "100644" | "100755" | "120000";

/** The new content of a changed path: bytes for a file, the target for a link. */
export type ChangedEntry =
  | {
      readonly type: "file";
      readonly mode: "100644" | "100755";
      /** The content, read without following links and with a size cap. */
      readonly bytes: Uint8Array;
      /** The git blob id of `bytes`, recomputed on the host. */
      readonly oid: string;
    }
  | {
      readonly type: "link";
      readonly mode: "120000";
      /** The link's target as stored by git (never resolved on the host). */
      readonly target: string;
      /** The git blob id of the target, recomputed on the host. */
      readonly oid: string;
    };

/** A commit the agent made in its clone, read and re-hashed on the host. */
export interface AgentCommit {
  readonly oid: string;
  readonly message: string;
  readonly author: { readonly name: string; readonly email: string; readonly timestamp: number };
}

/** One repo's part of a change set. */
export interface RepoChangeSet {
  /** The repo's name in the task spec and project. */
  readonly repo: string;
  /** The branch the session's clone was made on. */
  readonly branch: string;
  /** The commit the session started from (trusted: it came from the source repo). */
  readonly baseSha: string;
  /**
   * The clone's `HEAD` commit as the agent left it, after its object was re-hashed; equal to
   * `baseSha` when the agent made no commit. Untrusted: informational only.
   */
  readonly headSha: string;
  /** Commits between base and head, oldest first (empty when none or unreadable). */
  readonly commits: readonly AgentCommit[];
  /**
   * Every path whose content differs from the base tree (committed or not), sorted by path
   * (byte order). The workspace's files are the truth, not the agent's commits or index.
   */
  readonly paths: readonly ChangedPath[];
  /** Paths that were skipped, with why (over the size cap, a special file, outside the root). */
  readonly skipped: readonly { readonly path: string; readonly reason: string }[];
}

/** What an agent changed across all the repos of a session. */
export interface ChangeSet {
  readonly sessionId: string;
  /** When the workspace was read (ISO 8601). */
  readonly readAt: string;
  /** One entry per cloned repo, in the session's repo order. Read-only mounts are absent. */
  readonly repos: readonly RepoChangeSet[];
}

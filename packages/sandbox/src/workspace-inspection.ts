// Host-side inspection of a session's clones: what the agent committed and left uncommitted, and
// bringing the commits back to the source repositories.
import { join } from "node:path";
import { git, workspaceGit } from "./git.js";
import { withSessionPaused } from "./pause-session.js";
import { SessionError } from "./sandbox-errors.js";
import type { Session } from "./session.js";
import type { SessionState } from "./session-state-store.js";

/** One repo's code brought back to its source repository. */
export interface FetchResult {
  repo: string;
  branch: string;
  baseSha: string;
  headSha: string;
  commits: number;
  changedFiles: string[];
  uncommitted: string[];
  status: "fetched" | "unchanged" | "diverged" | "failed";
  /** Where the commits arrived in the source repo. */
  ref?: string;
  error?: string;
}

/**
 * Brings each cloned repo's session branch back to its source repository as
 * `refs/bulkhead/<session>/<branch>`, never touching the checked-out branch. With `strict`,
 * it is all or nothing: refs fetched in this call are removed again if any repo fails.
 */
export async function fetchSessionCode(session: Session, { strict = false }: { strict?: boolean } = {}): Promise<FetchResult[]> {
  const results: FetchResult[] = [];
  const fetched: { source: string; ref: string; previous: string | undefined }[] = [];
  for (const { repo: target, branch, path, ref } of sessionTargets(session)) {
    const repo = { ...target, branch };
    const base: FetchResult = {
      repo: repo.name,
      branch: repo.branch,
      baseSha: repo.baseSha,
      headSha: repo.baseSha,
      commits: 0,
      changedFiles: [],
      uncommitted: [],
      status: "unchanged",
    };
    try {
      const headSha = await git(path, ["rev-parse", `refs/heads/${repo.branch}`]);
      const commits = Number(await git(path, ["rev-list", "--count", `${repo.baseSha}..${headSha}`]));
      const changedFiles =
        commits === 0 ? [] : (await git(path, ["diff", "--name-only", repo.baseSha, headSha])).split("\n").filter(Boolean);
      const uncommitted = await withSessionPaused(session, () => uncommittedIn(path));
      const result: FetchResult = { ...base, headSha, commits, changedFiles, uncommitted };
      if (commits === 0) {
        results.push(result);
        continue;
      }
      const previous = await git(repo.source, ["rev-parse", "--verify", "--quiet", ref]).catch(() => undefined);
      if (
        previous &&
        previous !== headSha &&
        (await git(repo.source, ["merge-base", "--is-ancestor", previous, headSha]).then(
          () => false,
          () => true,
        ))
      ) {
        results.push({
          ...result,
          status: "diverged",
          error: `${ref} in ${repo.source} is at ${previous.slice(0, 12)}, which the session branch does not contain`,
        });
        continue;
      }
      // The workspace may belong to the container's user: tell upload-pack it is safe too.
      await git(repo.source, [
        "fetch",
        "--quiet",
        "--no-tags",
        "--upload-pack=git -c safe.directory=* upload-pack",
        path,
        `${headSha}:${ref}`,
      ]);
      fetched.push({ source: repo.source, ref, previous });
      results.push({ ...result, status: "fetched", ref });
    } catch (error) {
      results.push({ ...base, status: "failed", error: (error as Error).message });
    }
  }
  if (strict && results.some((result) => result.status === "failed" || result.status === "diverged")) {
    for (const { source, ref, previous } of fetched)
      await git(source, previous ? ["update-ref", ref, previous] : ["update-ref", "-d", ref]).catch(() => undefined);
    const failed = results.filter((result) => result.status === "failed" || result.status === "diverged");
    throw new SessionError(
      "fetch",
      `strict fetch failed for ${failed.map((result) => `${result.repo} (${result.status}: ${result.error})`).join(", ")}; nothing was fetched`,
    );
  }
  return results;
}

/** The session branch of every clone, then each worktree job's own branch, with the ref each arrives at. */
export function sessionTargets(session: Session): { repo: SessionState["repos"][number]; branch: string; path: string; ref: string }[] {
  const ref = (branch: string) =>
    `refs/bulkhead/${session.id}/${branch.startsWith("bulkhead/jobs/") ? branch.slice(branch.lastIndexOf("/") + 1) : session.id}`;
  return session.state.repos
    .filter((entry) => entry.mode === "clone")
    .flatMap((repo) => [
      { repo, branch: repo.branch, path: join(session.state.workspace, repo.name), ref: ref(repo.branch) },
      ...session.state.jobs
        .filter((job) => job.worktree)
        .map((job) => ({
          repo,
          branch: job.worktree!.branch,
          path: join(session.state.workspace, job.worktree!.path, repo.name),
          ref: ref(job.worktree!.branch),
        })),
    ]);
}

/**
 * Files changed in each cloned repo's working tree and not committed (staged, modified,
 * untracked), found without running anything the clone's config names (see `fetchCode`).
 */
export async function sessionUncommitted(session: Session): Promise<Record<string, string[]>> {
  const result: Record<string, string[]> = {};
  for (const repo of session.state.repos.filter((entry) => entry.mode === "clone"))
    result[repo.name] = await withSessionPaused(session, () => uncommittedIn(join(session.state.workspace, repo.name)));
  return result;
}

/** Throws unless every commit of the session's branches arrived in its source repo (before a remove). */
export async function assertAllFetched(session: Session): Promise<void> {
  for (const { repo, branch, path, ref } of sessionTargets(session)) {
    const head = await git(path, ["rev-parse", `refs/heads/${branch}`]).catch(() => repo.baseSha);
    if (head === repo.baseSha) continue;
    const fetched = await git(repo.source, ["rev-parse", "--verify", "--quiet", ref]).catch(() => undefined);
    if (fetched !== head)
      throw new SessionError(
        "remove",
        `repo ${repo.name} has commits that were not fetched: run fetchCode() first, or remove({ force: true })`,
      );
  }
}

/**
 * Uncommitted files of a clone, from plumbing that never reads file content (no clean filter can
 * run): staged changes, files whose stat differs from the index, and untracked files.
 */
export async function uncommittedIn(path: string): Promise<string[]> {
  // The host's chown (and the container's uid) changed every file's owner and ctime since the
  // checkout wrote the index: compare size and mtime only. A file changed within the index's own
  // second is "racily clean" to git and compared by content, so no change is missed.
  const stat = ["-c", "core.checkStat=minimal", "-c", "core.trustctime=false"];
  const listed = await Promise.all([
    workspaceGit(path, [...stat, "diff-index", "--cached", "--name-only", "HEAD"]),
    workspaceGit(path, [...stat, "diff-files", "--name-only"]),
    workspaceGit(path, ["ls-files", "--others", "--exclude-standard"]),
  ]);
  return [...new Set(listed.flatMap((text) => text.split("\n").filter(Boolean)))].sort();
}

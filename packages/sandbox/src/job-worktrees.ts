import { lchownSync, lstatSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { cloneRepo } from "./clone-repos.js";
import type { JobRecord } from "./session-state-store.js";
import { withSessionPaused } from "./pause-session.js";
import { realDirectory } from "./read-changes.js";
import { SessionError } from "./sandbox-errors.js";
import { sessionDir } from "./session-state-store.js";
import type { Session } from "./session.js";

/**
 * A copy of every cloned repo for one job, on the job's own branch, so parallel jobs never share
 * a working tree. Each is made from the trusted source repository at the session's base commit,
 * never through the agent's clone (whose config and attributes would decide what git runs): it
 * is cloned into a directory of the session's state that the container cannot see, then moved
 * into the workspace with the container paused, after every directory on the way was checked to
 * be a real one (the agent could have replaced `.bulkhead` or a directory in it with a link).
 */
export async function addJobWorktrees(session: Session, worktree: NonNullable<JobRecord["worktree"]>): Promise<void> {
  const name = basename(worktree.path);
  const staging = join(sessionDir(session.home, session.id), "staging", name);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  // The directories the host makes belong to the container's user, as the rest of the workspace.
  const [uid = Number.NaN, gid = Number.NaN] = session.state.user.split(":").map(Number);
  const handOver = (path: string) => {
    if (process.getuid?.() === 0 && Number.isInteger(uid)) lchownSync(path, uid, Number.isInteger(gid) ? gid : uid);
  };
  handOver(staging);
  try {
    for (const repo of session.state.repos.filter((entry) => entry.mode === "clone"))
      await cloneRepo({
        source: repo.source,
        baseSha: repo.baseSha,
        branch: worktree.branch,
        target: join(staging, repo.name),
        user: session.state.user,
      });
    await withSessionPaused(session, async () => {
      const refuse = (error: unknown): never => {
        throw new SessionError("worktree", `${(error as Error).message}: a worktree is never made through a link`, error);
      };
      const bulkhead = (() => {
        try {
          return realDirectory(session.state.workspace, ".bulkhead");
        } catch (error) {
          return refuse(error);
        }
      })();
      try {
        mkdirSync(join(bulkhead, "worktrees"));
        handOver(join(bulkhead, "worktrees"));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      let worktrees: string;
      try {
        worktrees = realDirectory(session.state.workspace, ".bulkhead/worktrees");
      } catch (error) {
        return refuse(error);
      }
      const target = join(worktrees, name);
      if (lstatSync(target, { throwIfNoEntry: false }))
        throw new SessionError("worktree", `${target} exists already: give each job its own id`);
      // rename(2) never follows a link at the target, and the directories above it were checked.
      renameSync(staging, target);
    });
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

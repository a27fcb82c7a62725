import { mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { chownTree } from "./clone-repos.js";
import { workspaceGit } from "./git.js";
import type { JobRecord } from "./session-state-store.js";
import { withSessionPaused } from "./pause-session.js";
import { SessionError } from "./sandbox-errors.js";
import type { Session } from "./session.js";

/**
 * A worktree per cloned repo on the job's own branch, so parallel jobs never share a working
 * tree. The worktree's `.git` file points back relatively, so git works inside the container too.
 */
export async function addJobWorktrees(session: Session, worktree: NonNullable<JobRecord["worktree"]>): Promise<void> {
  // All of it with the container paused, and every directory checked to be a real one inside
  // the workspace: the agent could have replaced .bulkhead or a directory in it with a link to
  // a host path, and the host would then create and write files there.
  await withSessionPaused(session, async () => {
    const root = realpathSync(session.state.workspace);
    const inside = (path: string): string => {
      const real = realpathSync(path);
      if (real !== root && !real.startsWith(`${root}/`))
        throw new SessionError("worktree", `${path} leads outside the workspace (${real}): a worktree is never made through a link`);
      return real;
    };
    // One level at a time: mkdir follows a link it meets on the way.
    const bulkhead = inside(join(session.state.workspace, ".bulkhead"));
    mkdirSync(join(bulkhead, "worktrees"), { recursive: true });
    const worktrees = inside(join(bulkhead, "worktrees"));
    const parent = join(worktrees, basename(worktree.path));
    mkdirSync(parent, { recursive: true });
    inside(parent);
    for (const repo of session.state.repos.filter((entry) => entry.mode === "clone")) {
      const clone = inside(join(session.state.workspace, repo.name));
      const target = join(parent, repo.name);
      await workspaceGit(clone, ["worktree", "add", "--quiet", "-b", worktree.branch, target, `refs/heads/${repo.branch}`]);
      const gitFile = join(inside(target), ".git");
      const gitdir = readFileSync(gitFile, "utf8")
        .trim()
        .replace(/^gitdir: /, "");
      writeFileSync(gitFile, `gitdir: ${relative(target, gitdir)}\n`);
    }
  });
  if (process.getuid?.() === 0) await chownTree(session.state.user, session.state.workspace);
}

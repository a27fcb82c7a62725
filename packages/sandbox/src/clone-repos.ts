import { join } from "node:path";
import { throwIfAborted } from "@bulkhead/core";
import { git, run } from "./git.js";
import type { Project } from "./project-config.js";
import type { SessionState } from "./session-state-store.js";

/**
 * Makes the session's copy of each repo in `workspace`: a local clone on `branch` at the repo's
 * ref (read-only repos are bind-mounted instead, and only their HEAD is recorded). A failure
 * carries the `step` that failed (`clone <repo>`).
 */
export async function cloneRepos(
  project: Project,
  { workspace, user, branch, abortSignal }: { workspace: string; user: string; branch: string; abortSignal?: AbortSignal | undefined },
): Promise<SessionState["repos"]> {
  const uid = process.getuid?.() ?? 1000;
  // The repos are cloned side by side: each clone is mostly checkout, and two cores check out
  // two trees faster than one tree after another.
  const settled = await Promise.allSettled(
    project.repos.map(async (repo): Promise<SessionState["repos"][number]> => {
      throwIfAborted(abortSignal, "createSession");
      if (repo.mode === "mount-ro") {
        return { name: repo.name, mode: repo.mode, source: repo.path, branch, baseSha: await git(repo.path, ["rev-parse", "HEAD"]) };
      }
      try {
        const baseSha = await git(repo.path, ["rev-parse", "--verify", `${repo.ref ?? "HEAD"}^{commit}`]);
        const target = join(workspace, repo.name);
        await git(workspace, ["clone", "--quiet", "--local", "--no-checkout", repo.path, target]);
        await git(target, ["checkout", "--quiet", "-b", branch, baseSha]);
        if (uid === 0) await chownTree(user, target);
        return { name: repo.name, mode: repo.mode, source: repo.path, branch, baseSha };
      } catch (error) {
        throw Object.assign(error as Error, { step: `clone ${repo.name}` });
      }
    }),
  );
  const failed = settled.find((outcome) => outcome.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return settled.map((outcome) => (outcome as PromiseFulfilledResult<SessionState["repos"][number]>).value);
}

/**
 * Hands a tree to the container's user. Object files are left alone: git never writes to them,
 * and in a `--local` clone they are hard links into the source repository, whose files must keep
 * their owner. Directories (where new objects go) and everything else change owner.
 */
export function chownTree(user: string, path: string): Promise<string> {
  return run("find", [path, "!", "(", "-type", "f", "-path", "*/.git/objects/*", ")", "-exec", "chown", "-h", user, "{}", "+"]);
}

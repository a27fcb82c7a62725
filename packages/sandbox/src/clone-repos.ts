import { readFileSync } from "node:fs";
import { join } from "node:path";
import { throwIfAborted } from "@bulkhead/core";
import { git, run } from "./git.js";
import type { Project } from "./project-config.js";
import type { SessionState } from "./session-state-store.js";

/**
 * Makes one session copy of a trusted source repo at `target`, a directory the agent cannot reach
 * yet (the container is not started, or the target is outside the workspace): a clone that
 * borrows the source's objects through `alternates` (never hard links, which the agent could
 * write through into the source), checked out on a new `branch` at `baseSha`, and handed to the
 * container's user. Returns the source objects directory, which the container must see
 * read-only at the same path.
 */
export async function cloneRepo({
  source,
  baseSha,
  branch,
  target,
  user,
}: {
  source: string;
  baseSha: string;
  branch: string;
  target: string;
  user: string;
}): Promise<{ objects: string }> {
  await git(source, ["clone", "--quiet", "--shared", "--no-checkout", source, target]);
  await git(target, ["checkout", "--quiet", "-b", branch, baseSha]);
  const objects = readFileSync(join(target, ".git", "objects", "info", "alternates"), "utf8")
    .split("\n")[0]!
    .trim();
  if (process.getuid?.() === 0) await chownTree(user, target);
  return { objects };
}

/**
 * Makes the session's copy of each repo in `workspace` (see {@link cloneRepo}; read-only repos
 * are bind-mounted instead, and only their HEAD is recorded). A failure carries the `step` that
 * failed (`clone <repo>`). `objects` lists the source object directories to mount read-only.
 */
export async function cloneRepos(
  project: Project,
  { workspace, user, branch, abortSignal }: { workspace: string; user: string; branch: string; abortSignal?: AbortSignal | undefined },
): Promise<{ repos: SessionState["repos"]; objects: string[] }> {
  // The repos are cloned side by side: each clone is mostly checkout, and two cores check out
  // two trees faster than one tree after another.
  const settled = await Promise.allSettled(
    project.repos.map(async (repo): Promise<SessionState["repos"][number] & { objects?: string }> => {
      throwIfAborted(abortSignal, "createSession");
      if (repo.mode === "mount-ro") {
        return { name: repo.name, mode: repo.mode, source: repo.path, branch, baseSha: await git(repo.path, ["rev-parse", "HEAD"]) };
      }
      try {
        const baseSha = await git(repo.path, ["rev-parse", "--verify", `${repo.ref ?? "HEAD"}^{commit}`]);
        const { objects } = await cloneRepo({ source: repo.path, baseSha, branch, target: join(workspace, repo.name), user });
        return { name: repo.name, mode: repo.mode, source: repo.path, branch, baseSha, objects };
      } catch (error) {
        throw Object.assign(error as Error, { step: `clone ${repo.name}` });
      }
    }),
  );
  const failed = settled.find((outcome) => outcome.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  const cloned = settled.map((outcome) => (outcome as PromiseFulfilledResult<SessionState["repos"][number] & { objects?: string }>).value);
  return {
    repos: cloned.map(({ objects: _objects, ...repo }) => repo),
    objects: [...new Set(cloned.flatMap((repo) => (repo.objects ? [repo.objects] : [])))],
  };
}

/** The read-only binds that let the container's git reach the source objects its clones borrow. */
export function objectBinds(objects: readonly string[]): string[] {
  return objects.map((dir) => `${dir}:${dir}:ro`);
}

/**
 * Hands a tree the host just made to the container's user. It holds no link into the source
 * repository (its objects are borrowed through alternates), so every file changes owner.
 */
export function chownTree(user: string, path: string): Promise<string> {
  return run("chown", ["-R", "-h", user, path]);
}

import { lchownSync, lstatSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { throwIfAborted } from "@bulkhead/core";
import { git, run } from "./git.js";
import type { Project } from "./project-config.js";
import type { SessionState } from "./session-state-store.js";

/** The session user as numbers: `uid[:gid]` (without a group, 0, as Docker runs `--user <uid>`). */
export function sessionIds(user: string): { uid: number; gid: number } {
  const [uid = 1000, gid = 0] = user.split(":").map(Number);
  return { uid, gid };
}

/**
 * Whether `ids` may use `path` as `need` says, judged from the mode bits of the path and of every
 * directory above it (search permission on each), as the kernel would for a process of that user
 * without supplementary groups (a child started with `uid`/`gid` has none).
 */
export function reachableBy(path: string, ids: { uid: number; gid: number }, need: "rx" | "wx"): boolean {
  const allows = (stats: { uid: number; gid: number; mode: number }, bits: number) => {
    const shift = stats.uid === ids.uid ? 6 : stats.gid === ids.gid ? 3 : 0;
    return ((stats.mode >> shift) & bits) === bits;
  };
  let current = resolve(path);
  try {
    if (!allows(statSync(current), need === "rx" ? 0o5 : 0o3)) return false;
    for (let parent = dirname(current); parent !== current; current = parent, parent = dirname(parent))
      if (!allows(statSync(parent), 0o1)) return false;
    return true;
  } catch {
    return false;
  }
}

/** Hands the entries under `path` to `ids`, one lchown each (never through a link). */
function handOver(path: string, ids: { uid: number; gid: number }): void {
  lchownSync(path, ids.uid, ids.gid);
  if (!lstatSync(path).isDirectory()) return;
  for (const name of readdirSync(path)) handOver(join(path, name), ids);
}

/**
 * Makes one session copy of a trusted source repo at `target`, a directory the agent cannot reach
 * yet (the container is not started, or the target is outside the workspace): a clone that
 * borrows the source's objects through `alternates` (never hard links, which the agent could
 * write through into the source), checked out on a new `branch` at `baseSha`, and owned by the
 * container's user. On a root host the working tree is written by git running AS that user, so
 * every file is that user's when it is written and nothing walks the tree afterwards; only the
 * clone's fresh `.git` (a fixed handful of entries, whatever the repo's size) is handed over
 * first. When that user cannot reach the source's objects or the target's directory (a `0700`
 * directory above them), git checks out as root and the tree is handed over with `chown -R`.
 * Returns the source objects directory, which the container must see read-only at the same path.
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
}): Promise<{ objects: string; checkedOutAs: "host user" | "session user" | "root, then chown" }> {
  await git(source, ["clone", "--quiet", "--shared", "--no-checkout", source, target]);
  const objects = readFileSync(join(target, ".git", "objects", "info", "alternates"), "utf8")
    .split("\n")[0]!
    .trim();
  // Parallel checkout (a worker per core): writing the files is most of a session's start.
  const checkout = ["-c", "checkout.workers=0", "checkout", "--quiet", "-b", branch, baseSha];
  if (process.getuid?.() !== 0) {
    await git(target, checkout);
    return { objects, checkedOutAs: "host user" };
  }
  const ids = sessionIds(user);
  if (reachableBy(objects, ids, "rx") && reachableBy(dirname(target), ids, "wx")) {
    handOver(target, ids);
    await git(target, checkout, { as: ids });
    return { objects, checkedOutAs: "session user" };
  }
  await git(target, checkout);
  await chownTree(user, target);
  return { objects, checkedOutAs: "root, then chown" };
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

/**
 * The fallback of {@link cloneRepo} when the session user cannot reach the source: hands a tree
 * the host just made to the container's user. It holds no link into the source repository (its
 * objects are borrowed through alternates), so every file changes owner.
 */
export function chownTree(user: string, path: string): Promise<string> {
  return run("chown", ["-R", "-h", user, path]);
}

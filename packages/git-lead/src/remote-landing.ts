import { execFile } from "node:child_process";
import { lazySchema, sleep } from "@bulkhead/core";
import { z } from "zod";
import { GitConflictError } from "./git-lead-errors.js";
import { compareAndSwapBranch, readBranch } from "./git-refs.js";
import type { JournalEntry } from "./journal.js";

type Intent = Extract<JournalEntry, { type: "intent" }>;

/**
 * A lock that puts the leads of one remote branch in a fair order across hosts while each takes
 * its turn (fetch, build, gates, push). The remote's compare-and-swap keeps the branch correct
 * without it; the lock only saves the losers' rebuilds and gives first come, first served.
 * `createPostgresLandingLock` of @bulkhead/postgres is one (a PostgreSQL advisory lock).
 */
export interface LandingLock {
  /** Waits for the lock named `key`; the lock goes when `release()` is called or the holder's process dies. */
  acquire(key: string): Promise<{ release(): Promise<void> }>;
}

/** Where a lead lands its commits: the team's shared remote. */
export interface RemoteLandingOptions {
  /**
   * The remote repository, as `git push` takes it: a path to a bare repository, `git://…`,
   * `ssh://…`, `https://…`. Never an agent's clone: git runs against it.
   */
  url: string;
  /** Orders the leads of this remote branch across hosts (see {@link LandingLock}). */
  lock?: LandingLock;
  /**
   * How many times a lead whose push lost (another host landed first) rebuilds its commit on the
   * new tip and pushes again before it refuses the submission. Every lost push means another
   * lead landed, so the team always progresses; without a `lock` a slow host may lose many times
   * in a row while others are busy. @default 1000
   */
  maxAttempts?: number;
}

function buildRemoteLandingSchema() {
  return z.object({
    // No leading "-": git would take it as an option. No ext:: or fd:: transports (they run commands).
    url: z
      .string()
      .min(1)
      .max(4096)
      .regex(/^(?!-)(?!(ext|fd)::)[^\0\n]+$/, "expected a remote path or URL (not an option, not ext:: or fd::)"),
    lock: z
      .custom<LandingLock>((value) => typeof (value as LandingLock | undefined)?.acquire === "function", "expected { acquire(key) }")
      .optional(),
    maxAttempts: z.number().int().positive().max(10_000).optional(),
  });
}

/** The schema of {@link RemoteLandingOptions}, built on first use. */
export const remoteLandingSchema = lazySchema(buildRemoteLandingSchema);

/** What the scan of the remote's new commits found about a submission. */
export type RemoteCheck = { landed: string } | { refuse: string } | undefined;

/**
 * Runs git in a repository the lead owns (its own clone; trusted), never an agent's clone. No
 * hooks, no automatic gc or maintenance (the lead's objects must stay where it wrote them), no
 * command-running transports, no prompts. The user's global configuration stays (credentials).
 */
function leadGit(gitdir: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      "git",
      [
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "gc.auto=0",
        "-c",
        "maintenance.auto=false",
        "-c",
        "protocol.ext.allow=never",
        "-c",
        "protocol.fd.allow=never",
        "-c",
        "core.fsmonitor=false",
        "--no-pager",
        `--git-dir=${gitdir}`,
        ...args,
      ],
      {
        cwd: gitdir,
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, LC_ALL: "C", GIT_TERMINAL_PROMPT: "0", GIT_OPTIONAL_LOCKS: "0", GIT_CONFIG_NOSYSTEM: "1" },
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
        if (code === -1) return reject(new GitConflictError(`git ${args[0]} could not run: ${error?.message}`, {}));
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/**
 * A lead's landing on the shared remote: the commit is built on the remote's tip, journaled, and
 * pushed with a lease on that exact tip (`--force-with-lease=<branch>:<tip>`, a compare-and-swap
 * on the server); only then does the lead's own branch move. A push that loses is a
 * `GitConflictError`: the lead rebuilds on the new tip, unless the same files moved there.
 * Every commit carries `Bulkhead-Submission: <id>`, so a commit whose push outlived its lead
 * (killed after git sent it) is found on the remote and counted, never made twice.
 */
export class RemoteLanding {
  readonly url: string;
  readonly maxAttempts: number;
  readonly #lock: LandingLock | undefined;
  readonly #gitdir: string;
  readonly #branch: string;
  readonly #ref: string;
  /** Per submission id, the oldest parent an earlier, unfinished attempt built on (from the journal). */
  readonly #earlier = new Map<string, string | undefined>();

  constructor({ gitdir, branch, url, lock, maxAttempts = 1000 }: RemoteLandingOptions & { gitdir: string; branch: string }) {
    this.url = url;
    this.maxAttempts = maxAttempts;
    this.#lock = lock;
    this.#gitdir = gitdir;
    this.#branch = branch;
    this.#ref = `refs/heads/${branch}`;
  }

  /** Runs one submission's turn under the landing lock, when there is one. */
  async serialized<TResult>(work: () => Promise<TResult>): Promise<TResult> {
    if (!this.#lock) return work();
    let held: { release(): Promise<void> } | undefined;
    try {
      held = await this.#lock.acquire(`bulkhead-lead:${this.url}#${this.#ref}`);
    } catch {
      // The lock only orders; the push's compare-and-swap keeps the branch right without it.
      held = undefined;
    }
    try {
      return await work();
    } finally {
      await held?.release().catch(() => undefined);
    }
  }

  /** Remembers, from the journal, the submissions whose earlier attempts may have reached the remote. */
  remember(entries: readonly JournalEntry[]): void {
    const done = new Set(entries.flatMap((entry) => (entry.type === "committed" || entry.type === "rejected" ? [entry.id] : [])));
    for (const entry of entries)
      if (entry.type === "intent" && entry.remote !== undefined && !done.has(entry.id) && !this.#earlier.has(entry.id))
        this.#earlier.set(entry.id, entry.parent);
  }

  /**
   * The remote branch's tip, its objects fetched into the lead's clone; undefined when the branch
   * does not exist there yet. Refuses when the lead's own branch has commits the remote lacks.
   */
  async tip(): Promise<string | undefined> {
    const listed = await leadGit(this.#gitdir, ["ls-remote", "--", this.url, this.#ref]);
    if (listed.code !== 0)
      throw new GitConflictError(`git ls-remote ${this.url} failed: ${listed.stderr.trim()}: is the remote reachable?`);
    let tip = /^([0-9a-f]{40})\t/m.exec(listed.stdout)?.[1];
    if (tip && !(await this.#has(tip))) {
      const fetched = await leadGit(this.#gitdir, [
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        "--",
        this.url,
        `+${this.#ref}:refs/bulkhead/remote/${this.#branch}`,
      ]);
      if (fetched.code !== 0)
        throw new GitConflictError(`git fetch ${this.url} failed: ${fetched.stderr.trim()}: is the remote reachable?`);
      tip = (
        await leadGit(this.#gitdir, ["rev-parse", "--verify", "--quiet", `refs/bulkhead/remote/${this.#branch}^{commit}`])
      ).stdout.trim();
    }
    const local = await readBranch(this.#gitdir, this.#branch);
    if (local && local !== tip && !(tip && (await this.#isAncestor(local, tip))))
      throw new GitConflictError(
        `branch ${this.#branch} of the lead's clone has commits that ${this.url} does not (${local.slice(0, 12)}): push or reset them, then submit again`,
        { branch: this.#branch, local, remote: tip },
      );
    return tip || undefined;
  }

  /**
   * Looks at what landed on the remote since this submission's earlier attempts (`since`, and any
   * attempt the journal remembers): its own commit (a push that outlived its lead) counts as
   * landed; another commit for the same issue refuses it; with `paths`, a commit that changed any
   * of the same files since `since` refuses it as a conflict.
   */
  async check({
    id,
    issueId,
    fixup,
    tip,
    since,
    paths,
    committer,
  }: {
    id: string;
    issueId: string;
    fixup: boolean;
    tip: string | undefined;
    since?: { parent: string | undefined };
    paths?: readonly string[];
    committer: string;
  }): Promise<RemoteCheck> {
    if (!tip) return undefined;
    // The oldest base first: an attempt before a crash may have landed long ago.
    const from = this.#earlier.has(id) ? { parent: this.#earlier.get(id) } : since;
    if (!from) return undefined;
    // Linear history: the commits since the oldest base, newest first, with their messages.
    const range = from.parent ? [tip, `^${from.parent}`] : [tip];
    const log = await leadGit(this.#gitdir, ["log", "--first-parent", "-z", "--format=%H%n%B", ...range, "--"]);
    if (log.code !== 0) throw new GitConflictError(`git log on the lead's clone failed: ${log.stderr.trim()}`);
    for (const record of log.stdout.split("\0")) {
      const sha = record.slice(0, 40);
      const trailers = record.slice(41);
      if (new RegExp(`^Bulkhead-Submission: ${escape(id)}$`, "m").test(trailers)) {
        await this.advance(sha, { committer, message: "commit (landed by an earlier attempt)", paths: [], parent: undefined });
        return { landed: sha };
      }
      if (!fixup && new RegExp(`^Bulkhead-Issue: ${escape(issueId)}$`, "m").test(trailers))
        return {
          refuse: `issue ${issueId} already has its commit ${sha.slice(0, 12)} on ${this.url} (landed by another lead): submit with fixup: true to add to it`,
        };
    }
    if (since && paths && paths.length > 0) {
      const moved = await this.changedPaths(since.parent, tip);
      const overlap = paths.filter((path) => moved.has(path));
      if (overlap.length > 0)
        return {
          refuse: `conflict: ${overlap.join(", ")} changed on ${this.url} (${(since.parent ?? "(unborn)").slice(0, 12)}..${tip.slice(0, 12)}) while this submission waited: rebase the work on the new tip and submit again`,
        };
    }
    return undefined;
  }

  /** Paths that differ between two commits (every path of `to` when `from` is undefined). */
  async changedPaths(from: string | undefined, to: string): Promise<Set<string>> {
    const result = from
      ? await leadGit(this.#gitdir, ["diff-tree", "-r", "-z", "--no-renames", "--name-only", from, to])
      : await leadGit(this.#gitdir, ["ls-tree", "-r", "-z", "--name-only", to]);
    if (result.code !== 0)
      throw new GitConflictError(`git could not compare ${from} and ${to} in the lead's clone: ${result.stderr.trim()}`);
    return new Set(result.stdout.split("\0").filter(Boolean));
  }

  /**
   * Pushes `commit` to the remote branch only if the branch is still at `parent` (a lease on the
   * exact value). A lost race is a `GitConflictError`; then `journal` records the push and the
   * lead's own branch is moved to the commit. Returns where the lead's branch was, and the paths
   * its checkout must be brought along on.
   */
  async land({
    parent,
    commit,
    paths,
    beforePush,
    pushed,
    committer,
    message,
  }: {
    parent: string | undefined;
    commit: string;
    paths: readonly string[];
    beforePush: () => Promise<void>;
    pushed: () => Promise<void>;
    committer: string;
    message: string;
  }): Promise<{ from: string | undefined; paths: readonly string[] }> {
    await beforePush();
    const push = await leadGit(this.#gitdir, [
      "push",
      "--porcelain",
      "--no-verify",
      `--force-with-lease=${this.#ref}:${parent ?? ""}`,
      "--",
      this.url,
      `${commit}:${this.#ref}`,
    ]);
    if (push.code !== 0) {
      const rejected = push.stdout.split("\n").find((line) => line.startsWith("!"));
      // A short random pause before the rebuild, so hosts that lost together do not collide again in step.
      if (rejected) await sleep(5 + Math.random() * 45);
      if (rejected)
        throw new GitConflictError(
          `${this.url} ${this.#branch} moved from ${parent?.slice(0, 12) ?? "(unborn)"} before this push landed (${rejected.split("\t").at(-1)}): the lead rebuilds on the new tip`,
          { branch: this.#branch, expected: parent },
        );
      throw new GitConflictError(`git push to ${this.url} failed: ${(push.stderr || push.stdout).trim()}: is the remote reachable?`);
    }
    await pushed();
    return this.advance(commit, { committer, message, paths, parent });
  }

  /** Moves the lead's own branch forward to a commit that is on the remote (unless it is there already). */
  async advance(
    commit: string,
    { committer, message, paths, parent }: { committer: string; message: string; paths: readonly string[]; parent: string | undefined },
  ): Promise<{ from: string | undefined; paths: readonly string[] }> {
    for (let attempt = 0; ; attempt++) {
      const local = await readBranch(this.#gitdir, this.#branch);
      if (local === commit || (local && (await this.#isAncestor(commit, local)))) return { from: local, paths: [] };
      // The lead's branch may be behind by other hosts' commits: its checkout is brought along on all of them.
      const along = local === parent ? paths : [...(await this.changedPaths(local, commit))];
      try {
        await compareAndSwapBranch(this.#gitdir, this.#branch, local, commit, { message, committer });
        return { from: local, paths: along };
      } catch (error) {
        if (!(error instanceof GitConflictError) || attempt >= 5) throw error;
      }
    }
  }

  /**
   * Recovery of an intent a stopped lead left: true (and the lead's branch moved to it) when the
   * commit reached the remote, whether or not the lead lived to journal it; false rolls it back.
   */
  async recover(intent: Intent, entries: readonly JournalEntry[], author: { committer: string }): Promise<boolean> {
    const pushed = entries.some((entry) => entry.type === "pushed" && entry.id === intent.id && entry.commit === intent.commit);
    if (!pushed) {
      const tip = await this.tip();
      if (!tip || !(tip === intent.commit || (await this.#isAncestor(intent.commit, tip)))) return false;
    }
    await this.advance(intent.commit, {
      committer: author.committer,
      message: "commit (recovered)",
      paths: intent.paths,
      parent: intent.parent,
    });
    return true;
  }

  async #has(oid: string): Promise<boolean> {
    return (await leadGit(this.#gitdir, ["cat-file", "-e", `${oid}^{commit}`])).code === 0;
  }

  async #isAncestor(ancestor: string, descendant: string): Promise<boolean> {
    const result = await leadGit(this.#gitdir, ["merge-base", "--is-ancestor", ancestor, descendant]);
    if (result.code > 1) throw new GitConflictError(`git merge-base failed in the lead's clone: ${result.stderr.trim()}`);
    return result.code === 0;
  }
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

// Host-side inspection of a session's clones, all of it built on the one change-set read
// (session-changes.ts): what the agent left uncommitted, and bringing the change back into the
// source repositories as a commit written there from the change set's bytes.
import { AbortedError, validateOptions, type ChangeSet, type ChangedPath } from "@bulkhead/core";
import { z } from "zod";
import { git } from "./git.js";
import { agentObjects, readAgentTree } from "./read-agent-git.js";
import { compareBytes, type RepoChanges, type TreeEntry } from "./read-changes.js";
import { SessionError } from "./sandbox-errors.js";
import { changeTargets, readTargets, toRepoChangeSet, type ChangeTarget } from "./session-changes.js";
import type { Session } from "./session.js";
import { changeDigest, writeChangeCommit } from "./write-change-commit.js";

/** One repo's code brought back to its source repository. */
export interface FetchResult {
  repo: string;
  branch: string;
  baseSha: string;
  /** The clone's branch head as the agent left it (untrusted, informational). */
  headSha: string;
  /** Commits the agent made on its branch. */
  commits: number;
  /** Every path whose content differs from the base commit, committed by the agent or not. */
  changedFiles: string[];
  /** Of those, the paths that differ from the agent's own last commit. */
  uncommitted: string[];
  status: "fetched" | "unchanged" | "diverged" | "failed";
  /** Where the change arrived in the source repo. */
  ref?: string;
  /** The commit at `ref`: the base commit plus the change, written in the source repo. */
  commit?: string;
  error?: string;
}

/** The identity of the commits `fetchCode` writes. */
const FETCH_AUTHOR = { name: "bulkhead", email: "bulkhead@localhost" };

/** What a `fetchCode` commit records about itself, read back from its message. */
function trailers(message: string): Record<string, string> {
  const found: Record<string, string> = {};
  for (const match of message.matchAll(/^(Bulkhead-[A-Za-z-]+): (.*)$/gm)) found[match[1]!] = match[2]!;
  return found;
}

/** A commit at `ref` in a source repo: its parent and trailers, or undefined when there is none. */
async function readFetched(
  source: string,
  ref: string,
): Promise<{ oid: string; parent: string | undefined; trailers: Record<string, string> } | undefined> {
  const oid = await git(source, ["rev-parse", "--verify", "--quiet", `${ref}^{commit}`]).catch(() => undefined);
  if (!oid) return undefined;
  const text = await git(source, ["cat-file", "commit", oid]);
  const split = text.indexOf("\n\n");
  const parent = /^parent ([0-9a-f]{40})$/m.exec(text.slice(0, split))?.[1];
  return { oid, parent, trailers: trailers(text.slice(split + 2)) };
}

/** Paths of the workspace that differ from the agent's last commit (its tree read and verified on the host). */
async function uncommittedOf(
  changes: RepoChanges,
  base: Map<string, TreeEntry>,
  workspace: string,
  path: string,
  sourceGitdir: string,
): Promise<string[]> {
  if (changes.headSha === changes.baseSha) return changes.paths.map((change) => change.path);
  const head = await readAgentTree(agentObjects(workspace, path, sourceGitdir), changes.headSha, base);
  const skipped = new Set(changes.skipped.map((entry) => entry.path));
  const differing = new Set<string>();
  for (const [entryPath, entry] of changes.entries) {
    const committed = head.get(entryPath);
    if (!committed || committed.mode !== entry.mode || committed.oid !== entry.oid) differing.add(entryPath);
  }
  for (const entryPath of head.keys()) if (!changes.entries.has(entryPath) && !skipped.has(entryPath)) differing.add(entryPath);
  return [...differing].sort(compareBytes);
}

/** Options of `session.fetchCode()`. */
export interface FetchCodeOptions {
  /** All or nothing: refs written in this call are put back if any repo fails or diverged. @default false */
  readonly strict?: boolean;
  /**
   * A change set read earlier by `session.changes()` (the session's clones, not a job's): used
   * instead of reading the workspace again, so what is fetched is exactly what was reviewed.
   */
  readonly changes?: ChangeSet;
  /**
   * Checked before the read and before each repo: an abort puts back every ref this call wrote
   * and throws `AbortedError`. @default no signal
   */
  readonly abortSignal?: AbortSignal;
}

const fetchCodeOptionsSchema = () =>
  z.strictObject({
    strict: z.boolean().optional(),
    changes: z
      .custom<ChangeSet>((value) => typeof value === "object" && value !== null, "expected a change set from session.changes()")
      .optional(),
    abortSignal: z.instanceof(AbortSignal).optional(),
  });

/**
 * Brings each cloned repo's change (and each worktree job's) back to its source repository, as a
 * commit on `refs/bulkhead/<session>/<session>` (a job's: `refs/bulkhead/<session>/<job>`) built
 * there from the base commit and the change set's bytes, never touching the checked-out branch.
 * Nothing runs in the workspace: the agent's commits are not fetched (upload-pack would read the
 * clone's config), its files are. The same change fetched again gives the same commit.
 */
export async function fetchSessionCode(session: Session, options: FetchCodeOptions = {}): Promise<FetchResult[]> {
  const { strict = false, changes, abortSignal } = validateOptions(fetchCodeOptionsSchema(), options, "options");
  const targets = changeTargets(session);
  const read = await readTargets(session, changes ? targets.filter((target) => target.job !== undefined) : targets, { abortSignal });
  const given = changes
    ? targets
        .filter((target) => target.job === undefined)
        .map((target) => {
          const repo = changes.repos.find((entry) => entry.repo === target.repo.name);
          if (!repo || changes.sessionId !== session.id)
            throw new SessionError(
              "fetch",
              `the change set given has no repo ${target.repo.name} of session ${session.id}: pass session.changes()`,
            );
          return { target, repo, uncommitted: undefined as string[] | undefined };
        })
    : [];
  const all = [
    ...given,
    ...(await Promise.all(
      read.map(async ({ target, changes: repoChanges, base, sourceGitdir }) => ({
        target,
        repo: toRepoChangeSet(repoChanges),
        uncommitted: await uncommittedOf(repoChanges, base, session.state.workspace, target.path, sourceGitdir).catch(() =>
          repoChanges.paths.map((change) => change.path),
        ),
      })),
    )),
  ];
  const order = new Map(targets.map((target, index) => [target, index]));
  all.sort((left, right) => order.get(left.target)! - order.get(right.target)!);
  const results: FetchResult[] = [];
  const written: { source: string; ref: string; previous: string | undefined; commit: string }[] = [];
  const putBack = async () => {
    for (const { source, ref, previous, commit } of written.reverse())
      await git(source, previous ? ["update-ref", ref, previous, commit] : ["update-ref", "-d", ref, commit]).catch(() => undefined);
  };
  for (const { target, repo, uncommitted } of all) {
    if (abortSignal?.aborted) {
      await putBack();
      throw new AbortedError("fetchCode", abortSignal.reason);
    }
    const result: FetchResult = {
      repo: target.repo.name,
      branch: target.branch,
      baseSha: target.repo.baseSha,
      headSha: repo.headSha,
      commits: repo.commits.length,
      changedFiles: repo.paths.map((change) => change.path),
      uncommitted: uncommitted ?? repo.paths.map((change) => change.path),
      status: "unchanged",
    };
    try {
      if (repo.paths.length === 0) {
        results.push(result);
        continue;
      }
      results.push(await fetchOne(session, target, repo.paths, repo.commits, result, written));
    } catch (error) {
      results.push({ ...result, status: "failed", error: (error as Error).message });
    }
  }
  if (strict && results.some((result) => result.status === "failed" || result.status === "diverged")) {
    await putBack();
    const failed = results.filter((result) => result.status === "failed" || result.status === "diverged");
    throw new SessionError(
      "fetch",
      `strict fetch failed for ${failed.map((result) => `${result.repo} (${result.status}: ${result.error})`).join(", ")}; nothing was fetched`,
    );
  }
  return results;
}

async function fetchOne(
  session: Session,
  target: ChangeTarget,
  paths: readonly ChangedPath[],
  commits: ChangeSet["repos"][number]["commits"],
  result: FetchResult,
  written: { source: string; ref: string; previous: string | undefined; commit: string }[],
): Promise<FetchResult> {
  const { source, baseSha } = target.repo;
  const digest = changeDigest(paths);
  const previous = await readFetched(source, target.ref);
  if (previous) {
    const ours = previous.trailers["Bulkhead-Session"] === session.id && previous.parent === baseSha;
    if (!ours)
      return {
        ...result,
        status: "diverged",
        error: `${target.ref} in ${source} is at ${previous.oid.slice(0, 12)}, which this session did not write`,
      };
    // Fetched before, and the workspace still holds the same change: the same commit.
    if (previous.trailers["Bulkhead-Change-Set"] === digest) return { ...result, status: "fetched", ref: target.ref, commit: previous.oid };
  }
  const subjects = commits.map((commit) => `- ${commit.message.split("\n")[0]!.slice(0, 200)}`);
  const message = [
    `bulkhead: ${target.repo.name} as session ${session.id} left it`,
    "",
    `${paths.length} path(s) differ from ${baseSha.slice(0, 12)}, read by content from the workspace.`,
    ...(subjects.length > 0 ? ["", "The agent's commits (not fetched; their content is in this one):", ...subjects.slice(-50)] : []),
    "",
    `Bulkhead-Session: ${session.id}`,
    `Bulkhead-Branch: ${target.branch}`,
    `Bulkhead-Change-Set: ${digest}`,
    "",
  ].join("\n");
  const commit = await writeChangeCommit({
    source,
    baseSha,
    paths,
    message,
    author: FETCH_AUTHOR,
    ref: target.ref,
    expected: previous?.oid,
  });
  written.push({ source, ref: target.ref, previous: previous?.oid, commit });
  return { ...result, status: "fetched", ref: target.ref, commit };
}

/**
 * Files of each cloned repo that differ from the agent's last commit on its branch (changed,
 * added or deleted and not committed), decided by content. See `session.changes()`.
 */
export async function sessionUncommitted(session: Session): Promise<Record<string, string[]>> {
  const targets = changeTargets(session).filter((target) => target.job === undefined);
  const read = await readTargets(session, targets);
  const result: Record<string, string[]> = {};
  for (const { target, changes, base, sourceGitdir } of read)
    // An agent's commit that cannot be read (corrupt, forged): everything changed counts as uncommitted.
    result[target.repo.name] = await uncommittedOf(changes, base, session.state.workspace, target.path, sourceGitdir).catch(() =>
      changes.paths.map((change) => change.path),
    );
  return result;
}

/** Throws unless every change in the session's workspace arrived in its source repo (before a remove). */
export async function assertAllFetched(session: Session): Promise<void> {
  const read = await readTargets(session, changeTargets(session));
  for (const { target, changes } of read) {
    if (changes.paths.length === 0) continue;
    const fetched = await readFetched(target.repo.source, target.ref);
    if (fetched?.trailers["Bulkhead-Change-Set"] !== changeDigest(changes.paths))
      throw new SessionError(
        "remove",
        `repo ${target.repo.name} has changes that were not fetched${target.job ? ` (job ${target.job})` : ""}: run fetchCode() first, or remove({ force: true })`,
      );
  }
}

import { InvalidArgumentError, type ChangeSet, type RepoChangeSet } from "@bulkhead/core";

/** What `changes` may be: a session's whole change set, one repo's part, or a list of parts. */
export type ChangeSetInput = ChangeSet | RepoChangeSet | readonly RepoChangeSet[];

/** The per-repo parts of a change set input, checked for shape (never read from disk). */
export function repoChangeSets(changes: ChangeSetInput, parameter: string): readonly RepoChangeSet[] {
  const repos = Array.isArray(changes)
    ? (changes as readonly RepoChangeSet[])
    : "repos" in (changes as ChangeSet)
      ? (changes as ChangeSet).repos
      : [changes as RepoChangeSet];
  for (const repo of repos) {
    if (typeof repo?.repo !== "string" || !Array.isArray(repo.paths))
      throw new InvalidArgumentError(parameter, "expected a ChangeSet (session.changes()), a RepoChangeSet, or a list of RepoChangeSets");
  }
  return repos;
}

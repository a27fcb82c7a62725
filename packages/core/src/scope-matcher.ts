import picomatch from "picomatch";
import { isPathWithin, normalizeRepoPath } from "./repo-path.js";

type PathTest = (path: string) => boolean;

/** True when the path is a glob rather than a literal file or directory. */
export function isGlob(path: string): boolean {
  return picomatch.scan(path).isGlob;
}

/** The literal directory a glob starts from (`src/**\/*.ts` → `src`). */
export function globBase(path: string): string {
  const base = normalizeRepoPath(picomatch.scan(path).base || ".");
  return base.ok ? base.path : ".";
}

/** A test for one scope entry: a glob matches by pattern, a literal path matches itself and what lies under it. */
export function compileEntry(entry: string): PathTest {
  if (!isGlob(entry)) return (path) => isPathWithin(path, entry);
  const match = picomatch(entry, { dot: true });
  return (path) => match(path);
}

/** A test that is true when any of the entries matches. */
export function compileEntries(entries: readonly string[]): PathTest {
  const tests = entries.map(compileEntry);
  return (path) => tests.some((test) => test(path));
}

/** True when any segment is `.git` (in any case): the repository's own data is never in scope. */
export function touchesGitDirectory(path: string): boolean {
  return path.split("/").some((segment) => segment.toLowerCase() === ".git");
}

/** Whether a repo-relative path is inside a scope repo's `paths` and outside its `exclude`. */
export function createScopeMatcher(paths: readonly string[], exclude: readonly string[]): PathTest {
  const included = compileEntries(paths);
  const excluded = compileEntries(exclude);
  return (path) => !touchesGitDirectory(path) && included(path) && !excluded(path);
}

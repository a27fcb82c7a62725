// Internal: what one repo's walk and measure found, kept beside a ScopeCache so that resolving
// the same scope again over an unchanged tree costs one stat per directory and one lstat per
// file, and nothing else: no listing, no rule chain, no cache lookup per file, no sort.
import { lstatSync, realpathSync, statSync, type Stats } from "node:fs";
import type { ScopeFile, ScopeLink, SkippedFile } from "./resolve-scope.js";
import type { CachedContent, ScopeCache } from "./scope-cache.js";

/** Device, inode, size, mtime and ctime, as the content cache keeps them. */
export type Identity = CachedContent["identity"];

/**
 * Everything a repo's result depended on. Taken only from a walk that met no link, refusal,
 * missing path, unreadable file or limit, so replaying it needs no other check.
 */
export interface WalkSnapshot {
  /** Each directory listed: its real absolute path and `dev:ino:mtimeMs:ctimeMs`. */
  directories: readonly (readonly [path: string, fingerprint: string])[];
  /** Each rule file read (`.gitignore`, `.git/info/exclude`): its path and identity, undefined when it was missing. */
  ruleFiles: readonly (readonly [path: string, identity: Identity | undefined])[];
  /** Each link reported (not walked): its path, identity, real target and whether that is a directory, and the report. */
  links: readonly (readonly [absolute: string, identity: Identity, real: string, isDirectory: boolean, link: ScopeLink])[];
  /** The walk's directory links (path → target), which the permissions read. */
  linkMap: readonly (readonly [path: string, target: string])[];
  /** Each dangling link (skipped as `broken-symlink`): its path, identity and the skip. */
  broken: readonly (readonly [absolute: string, identity: Identity, skip: SkippedFile])[];
  /** Each file measured, in order: its absolute path, identity, and what it resolved to. */
  files: readonly (readonly [absolute: string, identity: Identity, result: ScopeFile | SkippedFile, skipped: boolean])[];
}

const snapshots = new WeakMap<ScopeCache, Map<string, WalkSnapshot>>();
/** Snapshots kept per cache (one per repo and scope entry): the oldest goes first. */
const SNAPSHOTS_MAX = 8;

export const directoryFingerprint = (info: Stats) => `${info.dev}:${info.ino}:${info.mtimeMs}:${info.ctimeMs}`;

export const identityOf = (info: Stats): Identity => [info.dev, info.ino, info.size, info.mtimeMs, info.ctimeMs];

/** Compared field by field: no string is built for a file that is only stat'ed. */
export const sameIdentity = (info: Stats, identity: Identity) =>
  info.mtimeMs === identity[3] &&
  info.ctimeMs === identity[4] &&
  info.size === identity[2] &&
  info.ino === identity[1] &&
  info.dev === identity[0];

export function getSnapshot(cache: ScopeCache, key: string): WalkSnapshot | undefined {
  return snapshots.get(cache)?.get(key);
}

export function setSnapshot(cache: ScopeCache, key: string, snapshot: WalkSnapshot): void {
  let held = snapshots.get(cache);
  if (!held) snapshots.set(cache, (held = new Map()));
  held.delete(key);
  held.set(key, snapshot);
  if (held.size > SNAPSHOTS_MAX) held.delete(held.keys().next().value!);
}

/** Forgets a snapshot that no longer holds, so the next resolve takes a new one. */
export function dropSnapshot(cache: ScopeCache, key: string): void {
  snapshots.get(cache)?.delete(key);
}

/** A snapshot's results, replayed: fresh copies, so what a caller does with one never reaches the next. */
export interface Replay {
  files: ScopeFile[];
  skipped: SkippedFile[];
  links: ScopeLink[];
  linkMap: WalkSnapshot["linkMap"];
}

/**
 * The snapshot's results when every directory, rule file, link and file still has the identity
 * it had, else undefined. A directory's mtime moves when an entry is added, removed or renamed; a
 * file's identity when its content is written; a rule file's when its rules change; a link's when
 * it is made again, and its target is resolved again.
 */
export function replaySnapshot(snapshot: WalkSnapshot): Replay | undefined {
  try {
    return replay(snapshot);
  } catch {
    // Whatever a stat could not answer (a permission, a loop), the walk answers its own way.
    return undefined;
  }
}

/** Whether a link resolves now (the walk skips one that does not: a missing target, or a loop). */
function resolves(path: string): boolean {
  try {
    realpathSync(path);
    return true;
  } catch {
    return false;
  }
}

function replay(snapshot: WalkSnapshot): Replay | undefined {
  for (const [path, fingerprint] of snapshot.directories) {
    const info = statSync(path, { throwIfNoEntry: false });
    if (!info?.isDirectory() || directoryFingerprint(info) !== fingerprint) return undefined;
  }
  for (const [path, identity] of snapshot.ruleFiles) {
    const info = lstatSync(path, { throwIfNoEntry: false });
    if (identity === undefined ? info !== undefined : !info?.isFile() || !sameIdentity(info, identity)) return undefined;
  }
  const links: ScopeLink[] = [];
  for (const [absolute, identity, real, isDirectory, link] of snapshot.links) {
    const info = lstatSync(absolute, { throwIfNoEntry: false });
    if (!info?.isSymbolicLink() || !sameIdentity(info, identity) || realpathSync(absolute) !== real) return undefined;
    if (statSync(real, { throwIfNoEntry: false })?.isDirectory() !== isDirectory) return undefined;
    links.push({ ...link });
  }
  const files: ScopeFile[] = [];
  const skipped: SkippedFile[] = [];
  for (const [absolute, identity, skip] of snapshot.broken) {
    const info = lstatSync(absolute, { throwIfNoEntry: false });
    if (!info?.isSymbolicLink() || !sameIdentity(info, identity) || resolves(absolute)) return undefined;
    skipped.push({ ...skip });
  }
  for (const [absolute, identity, result, isSkipped] of snapshot.files) {
    const info = lstatSync(absolute, { throwIfNoEntry: false });
    if (!info?.isFile() || !sameIdentity(info, identity)) return undefined;
    if (isSkipped) skipped.push({ ...(result as SkippedFile) });
    else files.push({ ...(result as ScopeFile) });
  }
  return { files, skipped, links, linkMap: snapshot.linkMap };
}

import { lstatSync, readlinkSync, realpathSync, type Stats } from "node:fs";
import { isAbsolute, join, relative, sep } from "node:path";
import { normalizeRepoPath } from "./repo-path.js";

/** How {@link resolvePathInside} treats a symbolic link on the way. */
export type LinkPolicy =
  /** Any link in the prefix is refused, as git refuses a path "beyond a symbolic link"; the last component is never followed. */
  | "refuse"
  /** A link (in the prefix or last) is followed while it resolves inside the root; one that leaves it is refused. */
  | "inside";

/** The outcome of {@link resolvePathInside}. */
export type ResolvedPathInside =
  | {
      ok: true;
      /** The path as given, normalized (repo-relative, `/`-separated; `"."` is the root). */
      path: string;
      /** The path after following links, relative to the root: equals `path` when no link was followed. */
      real: string;
      /** `join(root, real)`. */
      absolute: string;
      /** `lstat` of the last component (a link is reported as a link under `"refuse"`); undefined when it does not exist. */
      stats: Stats | undefined;
    }
  | { ok: false; reason: string };

/** Links followed per resolution before it counts as a loop (Linux's own limit). */
const MAX_LINK_HOPS = 40;

/**
 * Resolves a path given by a user or an agent under `root`, one component at a time: every
 * prefix is `lstat`ed, so a symbolic link anywhere on the way is seen, not silently followed.
 * With `links: "refuse"` (the lead, writers) a link in the prefix is refused like git's "beyond a
 * symbolic link"; with `"inside"` (scope reads) a link is followed only while it stays inside the
 * root, and a link that leaves it (`etclink -> /etc`), or a loop, is refused. A component that
 * does not exist ends the walk: the rest is taken as written and `stats` is undefined.
 * `root` itself is trusted (it is resolved with `realpath`).
 *
 * @example
 * resolvePathInside(repo, "etclink/hostname", { links: "refuse" });
 * // { ok: false, reason: 'is beyond a symbolic link ("etclink")' }
 */
export function resolvePathInside(root: string, path: string, { links }: { links: LinkPolicy }): ResolvedPathInside {
  const normalized = normalizeRepoPath(path, { allowControl: true });
  if (!normalized.ok) return normalized;
  const realRoot = realpathSync(root);
  if (normalized.path === ".") return { ok: true, path: ".", real: ".", absolute: realRoot, stats: lstatSync(realRoot) };
  const pending = normalized.path.split("/");
  const resolved: string[] = [];
  let hops = 0;
  let stats: Stats | undefined;
  while (pending.length > 0) {
    const name = pending.shift()!;
    if (name === "..") {
      if (resolved.length === 0) return { ok: false, reason: "leads above the root through a symbolic link" };
      resolved.pop();
      continue;
    }
    if (name === "" || name === ".") continue;
    const here = join(realRoot, ...resolved, name);
    stats = lstatSync(here, { throwIfNoEntry: false });
    if (!stats) {
      // Missing: nothing on disk can redirect the rest, which is taken lexically.
      resolved.push(name);
      for (const rest of pending) {
        if (rest !== "..") {
          if (rest !== "" && rest !== ".") resolved.push(rest);
        } else if (resolved.pop() === undefined) return { ok: false, reason: "leads above the root through a symbolic link" };
      }
      return finish(normalized.path, resolved, realRoot, undefined);
    }
    const last = pending.length === 0;
    if (stats.isSymbolicLink()) {
      if (links === "refuse") {
        if (last) {
          resolved.push(name);
          break;
        }
        return { ok: false, reason: `is beyond a symbolic link ("${[...resolved, name].join("/")}")` };
      }
      if (++hops > MAX_LINK_HOPS) return { ok: false, reason: "has a loop of symbolic links" };
      const target = readlinkSync(here);
      let base: string[] = resolved;
      let targetRest = target;
      if (isAbsolute(target)) {
        const inside = relative(realRoot, target);
        if (inside.startsWith("..") || isAbsolute(inside))
          return {
            ok: false,
            reason: `goes through a symbolic link that leaves the root ("${[...resolved, name].join("/")}" -> ${target})`,
          };
        base = [];
        targetRest = inside.split(sep).join("/");
      }
      // The target is walked in its turn, from the directory that holds the link; a ".." in it
      // that climbs above the root is refused by the loop.
      const targetParts = targetRest.split("/");
      resolved.splice(0, resolved.length, ...base);
      pending.unshift(...targetParts);
      continue;
    }
    if (!last && !stats.isDirectory()) {
      // A file in the middle: the path names nothing (ENOTDIR), reported as missing.
      return finish(normalized.path, [...resolved, name, ...pending], realRoot, undefined);
    }
    resolved.push(name);
  }
  return finish(normalized.path, resolved, realRoot, stats);
}

function finish(path: string, resolved: readonly string[], realRoot: string, stats: Stats | undefined): ResolvedPathInside {
  const real = resolved.length === 0 ? "." : resolved.join("/");
  return { ok: true, path, real, absolute: real === "." ? realRoot : join(realRoot, real), stats };
}

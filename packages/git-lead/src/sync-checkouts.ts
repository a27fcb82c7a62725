import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { randomBytes } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { resolvePathInside } from "@bulkhead/core";
import { workingBlobId } from "./build-commit.js";
import { createIndexEntry, describeIndexEntry, editIndex, type IndexEntries } from "./git-index.js";
import type { ObjectStore, TreeEntry } from "./object-store.js";

/** A working tree that has the branch checked out, and its index. */
interface Checkout {
  workdir: string;
  indexPath: string;
}

/** Every checkout of `branch`: the main working tree (for a non-bare repo) and linked worktrees. */
export function findCheckouts(gitdir: string, branch: string): Checkout[] {
  const wanted = `ref: refs/heads/${branch}`;
  const head = (path: string) => {
    try {
      return readFileSync(path, "utf8").trim();
    } catch {
      return undefined;
    }
  };
  const checkouts: Checkout[] = [];
  if (basename(gitdir) === ".git" && head(join(gitdir, "HEAD")) === wanted)
    checkouts.push({ workdir: dirname(gitdir), indexPath: join(gitdir, "index") });
  const linked = join(gitdir, "worktrees");
  for (const name of existsSync(linked) ? readdirSync(linked) : []) {
    if (head(join(linked, name, "HEAD")) !== wanted) continue;
    const pointer = head(join(linked, name, "gitdir"));
    if (pointer) checkouts.push({ workdir: dirname(pointer), indexPath: join(linked, name, "index") });
  }
  return checkouts;
}

/** What a working-tree path holds now, as git would hash it (no filters: a filtered file reads as changed). */
function workingEntry(
  workdir: string,
  path: string,
): { ok: true; entry: Pick<TreeEntry, "mode" | "oid"> | undefined } | { ok: false; reason: string } {
  const resolved = resolvePathInside(workdir, path, { links: "refuse" });
  if (!resolved.ok) return resolved;
  const stats = resolved.stats;
  if (!stats) return { ok: true, entry: undefined };
  const oid = workingBlobId(resolved.absolute, stats);
  if (oid === undefined) return { ok: false, reason: "is not a file in the working tree" };
  return { ok: true, entry: { mode: stats.isSymbolicLink() ? "120000" : stats.mode & 0o111 ? "100755" : "100644", oid } };
}

const same = (left: Pick<TreeEntry, "mode" | "oid"> | undefined, right: Pick<TreeEntry, "mode" | "oid"> | undefined) =>
  left === undefined ? right === undefined : right !== undefined && left.mode === right.mode && left.oid === right.oid;

/** Writes an entry into the working tree by a rename (a link in the way is replaced, never followed). */
async function writeWorking(store: ObjectStore, workdir: string, path: string, entry: TreeEntry): Promise<void> {
  const target = join(workdir, path);
  mkdirSync(dirname(target), { recursive: true });
  const temporary = join(dirname(target), `.bulkhead-${randomBytes(6).toString("hex")}.tmp`);
  const content = await store.readBlob(entry.oid);
  try {
    if (entry.mode === "120000") symlinkSync(content.toString("utf8"), temporary);
    else writeFileSync(temporary, content, { flag: "wx", mode: entry.mode === "100755" ? 0o755 : 0o644 });
    renameSync(temporary, target);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

/** Removes a path's entries (every stage), entries below it, and entries for its ancestors (a file where a directory now is). */
function removeEntries(entries: IndexEntries, path: string): void {
  const name = Buffer.from(path);
  const { at } = entries.find(name);
  let end = at;
  while (end < entries.length && entries.nameAt(end).equals(name)) end++;
  entries.splice(at, end - at);
  const below = Buffer.from(`${path}/`);
  const first = entries.find(below).at;
  let last = first;
  while (last < entries.length && entries.nameAt(last).subarray(0, below.length).equals(below)) last++;
  entries.splice(first, last - first);
  for (let slash = path.indexOf("/"); slash !== -1; slash = path.indexOf("/", slash + 1)) {
    const ancestor = entries.find(Buffer.from(path.slice(0, slash)));
    if (ancestor.found) entries.splice(ancestor.at, 1);
  }
}

/**
 * After the branch moved from `parentTree` to `tree`, brings each checkout of the branch along,
 * path by path, without running git: a committed path that is clean there (its index entry and
 * working-tree file hold the parent's version, or already the new one) gets the new content and
 * a fresh index entry; a path with local changes (or a merge conflict, or beyond a link) is left
 * exactly as it was and reported. Runs under the checkout's `index.lock`; idempotent, so a
 * recovering lead may run it again.
 */
export async function syncCheckouts({
  store,
  gitdir,
  branch,
  parentTree,
  tree,
  paths,
  timeoutMs,
}: {
  store: ObjectStore;
  gitdir: string;
  branch: string;
  parentTree: string | undefined;
  tree: string;
  paths: readonly string[];
  timeoutMs?: number;
}): Promise<{ indexNotRefreshed?: string; checkoutNotUpdated: { workdir: string; path: string; reason: string }[] }> {
  const checkoutNotUpdated: { workdir: string; path: string; reason: string }[] = [];
  const problems: string[] = [];
  for (const { workdir, indexPath } of findCheckouts(gitdir, branch)) {
    const outcome = await editIndex(
      { indexPath, workdir },
      async (index) => {
        let edited = false;
        for (const path of paths) {
          const before = await store.entryAt(parentTree, path);
          const after = await store.entryAt(tree, path);
          const leave = (reason: string) => void checkoutNotUpdated.push({ workdir, path, reason });
          if (before?.mode === "40000" || after?.mode === "40000") {
            leave("is a directory on one side of the commit");
            continue;
          }
          const found = index.entries.find(Buffer.from(path));
          const staged = found.found ? describeIndexEntry(index.entries.at(found.at)) : undefined;
          if (staged && staged.stage !== 0) {
            leave("has a merge conflict in the index");
            continue;
          }
          if (!same(staged, before) && !same(staged, after)) {
            leave("has staged changes");
            continue;
          }
          const working = workingEntry(workdir, path);
          if (!working.ok) {
            leave(working.reason);
            continue;
          }
          if (!same(working.entry, before) && !same(working.entry, after)) {
            leave("has local changes in the working tree");
            continue;
          }
          if (!same(working.entry, after)) {
            if (after) await writeWorking(store, workdir, path, after);
            else if (working.entry) unlinkSync(join(workdir, path));
          }
          removeEntries(index.entries, path);
          if (after) {
            const stats = lstatSync(join(workdir, path));
            const entry = createIndexEntry(path, after.oid, Number.parseInt(after.mode, 8), stats);
            index.entries.splice(index.entries.find(entry.name).at, 0, entry);
          }
          edited = true;
        }
        return edited;
      },
      timeoutMs === undefined ? {} : { timeoutMs },
    ).catch((error: unknown) => ({ edited: false, leftAlone: (error as Error).message }));
    if (outcome.leftAlone) problems.push(outcome.leftAlone);
  }
  return problems.length > 0
    ? { indexNotRefreshed: `${problems.join("; ")}; run \`git reset -- <files>\` to refresh the index`, checkoutNotUpdated }
    : { checkoutNotUpdated };
}

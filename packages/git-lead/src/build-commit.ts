import { createHash } from "node:crypto";
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
  type Stats,
} from "node:fs";
import { join } from "node:path";
import { InvalidArgumentError, resolvePathInside, type ChangedPath } from "@bulkhead/core";
import { GitConflictError } from "./git-lead-errors.js";
import { gitTimestamp } from "./git-refs.js";
import type { ObjectStore, TreeEntry } from "./object-store.js";
import type { QueueEntry, QueuedChange } from "./submission.js";

/** Path → its new tree entry, or null for a deletion. */
export type TreeChanges = Map<string, TreeEntry | null>;

/** The git object id of `content` as an object of `type`. */
export function hashObject(type: "blob" | "tree" | "commit", content: Uint8Array): string {
  return createHash("sha1").update(`${type} ${content.byteLength}\0`).update(content).digest("hex");
}

/**
 * The blob id of what a working-tree path holds, as git hashes it (no filters): a link's target,
 * a file's bytes; undefined for anything else. `stats` is the path's `lstat`.
 */
export function workingBlobId(absolute: string, stats: Stats): string | undefined {
  if (stats.isSymbolicLink()) return hashObject("blob", Buffer.from(readlinkSync(absolute)));
  return stats.isFile() ? hashObject("blob", readFileSync(absolute)) : undefined;
}

/**
 * Writes a change set's bytes as blobs in the lead's repository, after recomputing every oid: a
 * change whose bytes do not hash to the oid it claims is refused, so nothing the producer said is
 * taken on trust. Returns the changes as ids only, ready to be queued.
 */
export function writeChangeBlobs(store: ObjectStore, changes: readonly ChangedPath[]): QueuedChange[] {
  const queued: QueuedChange[] = [];
  for (const change of changes) {
    if (!change.entry) {
      queued.push({ path: change.path, deleted: true });
      continue;
    }
    const bytes = change.entry.type === "file" ? change.entry.bytes : Buffer.from(change.entry.target, "utf8");
    const oid = hashObject("blob", bytes);
    if (oid !== change.entry.oid)
      throw new InvalidArgumentError(
        "submission.changes",
        `${change.path}: its bytes hash to ${oid}, not the ${change.entry.oid} the change set claims: read the change set again`,
      );
    store.write("blob", Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    queued.push({ path: change.path, deleted: false, mode: change.entry.mode, oid });
  }
  return queued;
}

/**
 * Reads a trusted local worker's files from `dir` as they are now, resolving every path one
 * component at a time: a path beyond a symbolic link (`etclink/hostname`) is refused, as git
 * refuses it; a link itself is committed as a link; a missing file is a deletion.
 */
export function readWorkerFiles(store: ObjectStore, dir: string, paths: readonly string[]): TreeChanges {
  const changes: TreeChanges = new Map();
  for (const path of paths) {
    const resolved = resolvePathInside(dir, path, { links: "refuse" });
    if (!resolved.ok) throw new InvalidArgumentError("submission.files", `${path} ${resolved.reason}: it cannot be committed`);
    const before = resolved.stats;
    if (!before) {
      changes.set(path, null);
      continue;
    }
    let content: Buffer;
    if (before.isSymbolicLink()) content = Buffer.from(readlinkSync(resolved.absolute));
    else if (before.isFile()) {
      // O_NOFOLLOW: a file swapped for a link after the lstat is not followed.
      const descriptor = openSync(resolved.absolute, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        if (fstatSync(descriptor).ino !== before.ino) throw new GitConflictError(`${path} changed while the lead read it: submit again`);
        content = readFileSync(descriptor);
      } finally {
        closeSync(descriptor);
      }
    } else throw new InvalidArgumentError("submission.files", `${path} is not a file or a symbolic link`);
    const after = lstatSync(resolved.absolute);
    if (after.mtimeMs !== before.mtimeMs || after.size !== before.size)
      throw new GitConflictError(`${path} changed while the lead read it: submit again when the worker is done writing`);
    const mode = before.isSymbolicLink() ? "120000" : before.mode & 0o111 ? "100755" : "100644";
    changes.set(path, { mode, name: path, oid: store.write("blob", content) });
  }
  return changes;
}

/** Queued change-set paths as tree changes. */
export function queuedTreeChanges(changes: readonly QueuedChange[]): TreeChanges {
  return new Map(changes.map((change) => [change.path, change.deleted ? null : { mode: change.mode, name: change.path, oid: change.oid }]));
}

/** The branch tip's tree with the changes applied: only the levels along changed paths are rewritten. */
export async function buildTree(store: ObjectStore, parentTree: string | undefined, changes: TreeChanges): Promise<string> {
  return (await updateTree(store, parentTree, "", changes)) ?? store.writeTree([]);
}

async function updateTree(store: ObjectStore, oid: string | undefined, prefix: string, changes: TreeChanges): Promise<string | undefined> {
  const entries = new Map((oid ? await store.readTree(oid) : []).map((entry) => [entry.name, entry]));
  const below = new Map<string, TreeChanges>();
  for (const [path, change] of changes) {
    if (!path.startsWith(prefix)) continue;
    const rest = path.slice(prefix.length);
    const slash = rest.indexOf("/");
    if (slash === -1) {
      if (change === null) entries.delete(rest);
      else entries.set(rest, { ...change, name: rest });
      continue;
    }
    const name = rest.slice(0, slash);
    if (!below.has(name)) below.set(name, new Map());
    below.get(name)!.set(path, change);
  }
  for (const [name, nested] of below) {
    const existing = entries.get(name);
    const subtree = await updateTree(store, existing?.mode === "40000" ? existing.oid : undefined, `${prefix}${name}/`, nested);
    if (subtree === undefined) entries.delete(name);
    else entries.set(name, { mode: "40000", name, oid: subtree });
  }
  // Content-addressed: an unchanged level writes the same tree id again.
  return entries.size === 0 ? undefined : store.writeTree([...entries.values()]);
}

/** Writes the issue's commit object: the message with bulkhead's trailers, by the lead's author. */
export function writeCommit(
  store: ObjectStore,
  entry: Pick<QueueEntry, "issueId" | "worker" | "message" | "usage" | "trailers">,
  tree: string,
  parent: string | undefined,
  author: { name: string; email: string },
): string {
  const trailers = {
    "Bulkhead-Issue": entry.issueId,
    "Bulkhead-Worker": entry.worker,
    ...(entry.usage
      ? {
          "Bulkhead-Tokens": `${entry.usage.inputTokens + entry.usage.outputTokens} (in ${entry.usage.inputTokens}, out ${entry.usage.outputTokens})`,
        }
      : {}),
    ...entry.trailers,
  };
  const message = `${entry.message.trim()}\n\n${Object.entries(trailers)
    .map(([key, value]) => `${key}: ${value}`)
    .join("\n")}\n`;
  const who = `${author.name} <${author.email}> ${gitTimestamp()}`;
  const body = `tree ${tree}\n${parent ? `parent ${parent}\n` : ""}author ${who}\ncommitter ${who}\n\n${message}`;
  return store.write("commit", Buffer.from(body));
}

/**
 * Writes a tree's files into an empty directory the lead owns (where gates run for a change-set
 * submission): regular files with their executable bit, links as links, never through a link
 * (each file is created exclusively, and directories are made only under paths just created).
 */
export async function checkoutTree(store: ObjectStore, tree: string, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  for (const entry of await store.readTree(tree)) {
    const path = join(dir, entry.name);
    if (entry.mode === "40000") {
      mkdirSync(path);
      await checkoutTree(store, entry.oid, path);
    } else if (entry.mode === "120000") symlinkSync((await store.readBlob(entry.oid)).toString("utf8"), path);
    else if (entry.mode === "100644" || entry.mode === "100755")
      writeFileSync(path, await store.readBlob(entry.oid), { flag: "wx", mode: entry.mode === "100755" ? 0o755 : 0o644 });
    // Submodules (160000) have no content here: they are left out, as a fresh clone leaves them.
  }
}

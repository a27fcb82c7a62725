import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { readFileSync, renameSync, statSync, writeFileSync, type Stats } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { withGitLock } from "./file-lock.js";

const run = promisify(execFile);

/** What the index should say about one path after a commit. */
export type IndexUpdate = { path: string; deleted: true } | { path: string; deleted: false; oid: string; mode: number; stats: Stats };

interface Entry {
  path: string;
  bytes: Buffer;
}

function entryBytes(update: Extract<IndexUpdate, { deleted: false }>): Buffer {
  const name = Buffer.from(update.path, "utf8");
  const length = 62 + name.length;
  const padded = length + (8 - (length % 8));
  const buffer = Buffer.alloc(padded);
  const { stats } = update;
  const seconds = (ms: number) => Math.floor(ms / 1000) >>> 0;
  const nanos = (ms: number) => Math.floor((ms % 1000) * 1e6) >>> 0;
  buffer.writeUInt32BE(seconds(stats.ctimeMs), 0);
  buffer.writeUInt32BE(nanos(stats.ctimeMs), 4);
  buffer.writeUInt32BE(seconds(stats.mtimeMs), 8);
  buffer.writeUInt32BE(nanos(stats.mtimeMs), 12);
  buffer.writeUInt32BE(stats.dev >>> 0, 16);
  buffer.writeUInt32BE(stats.ino >>> 0, 20);
  buffer.writeUInt32BE(update.mode, 24);
  buffer.writeUInt32BE(stats.uid >>> 0, 28);
  buffer.writeUInt32BE(stats.gid >>> 0, 32);
  buffer.writeUInt32BE(stats.size >>> 0, 36);
  Buffer.from(update.oid, "hex").copy(buffer, 40);
  buffer.writeUInt16BE(Math.min(name.length, 0xfff), 60);
  name.copy(buffer, 62);
  return buffer;
}

/** The last index this process wrote, by file identity: a match skips reading and parsing it again. */
let lastWritten: { key: string; version: number; entries: Entry[] } | undefined;

const identity = (stats: Stats) => `${stats.ino}:${stats.size}:${stats.mtimeMs}`;

/** Parses a version 2 or 3 index; returns undefined for formats this patcher leaves to git. */
function parseIndex(data: Buffer): { version: number; entries: Entry[] } | undefined {
  if (data.length < 32 || data.toString("latin1", 0, 4) !== "DIRC") return undefined;
  const version = data.readUInt32BE(4);
  if (version !== 2 && version !== 3) return undefined;
  const count = data.readUInt32BE(8);
  const entries: Entry[] = [];
  let offset = 12;
  for (let index = 0; index < count; index++) {
    const flags = data.readUInt16BE(offset + 60);
    const extended = (flags & 0x4000) !== 0;
    const nameStart = offset + 62 + (extended ? 2 : 0);
    const nameEnd = data.indexOf(0, nameStart);
    const length = nameEnd - offset;
    const size = length + (8 - (length % 8));
    entries.push({ path: data.toString("utf8", nameStart, nameEnd), bytes: data.subarray(offset, offset + size) });
    offset += size;
  }
  // Only optional extensions (upper-case signature) may follow; they describe the old index
  // (cache-tree, untracked cache) and are dropped. A required one means a format we leave alone.
  for (let at = offset; at < data.length - 20;) {
    const signature = data.toString("latin1", at, at + 4);
    if (signature[0]! < "A" || signature[0]! > "Z") return undefined;
    at += 8 + data.readUInt32BE(at + 4);
  }
  return { version, entries };
}

/**
 * Refreshes only the given paths' entries in `.git/index`, under git's own `index.lock`, so
 * `git status` shows them clean after a commit made without the index. Other entries are copied
 * byte for byte; the cache-tree extension is dropped (git rebuilds it). Index formats this
 * patcher does not handle (v4, split index) fall back to `git reset -- <paths>`.
 */
export async function refreshIndex(
  workdir: string,
  gitdir: string,
  updates: readonly IndexUpdate[],
  { timeoutMs }: { timeoutMs?: number } = {},
): Promise<void> {
  if (updates.length === 0) return;
  const indexPath = join(gitdir, "index");
  const fallback = await withGitLock(
    indexPath,
    async (lockPath, consumed) => {
      const current = statSync(indexPath, { throwIfNoEntry: false });
      let parsed: { version: number; entries: Entry[] } | undefined;
      if (current && lastWritten?.key === `${indexPath}:${identity(current)}`) parsed = lastWritten;
      else if (!current) parsed = { version: 2, entries: [] };
      else parsed = parseIndex(readFileSync(indexPath));
      if (!parsed) return true;
      // The index is sorted by path bytes: replace and delete in place, insert by binary search.
      const changed = new Map(updates.map((update) => [update.path, update]));
      const kept: Entry[] = parsed.entries.filter((entry) => {
        if (changed.has(entry.path)) return false;
        const slash = entry.path.indexOf("/");
        if (slash === -1) return true;
        for (let at = slash; at !== -1; at = entry.path.indexOf("/", at + 1)) if (changed.has(entry.path.slice(0, at))) return false;
        return true;
      });
      for (const update of updates) {
        if (update.deleted) continue;
        const key = Buffer.from(update.path);
        let low = 0;
        let high = kept.length;
        while (low < high) {
          const middle = (low + high) >>> 1;
          if (Buffer.compare(Buffer.from(kept[middle]!.path), key) < 0) low = middle + 1;
          else high = middle;
        }
        kept.splice(low, 0, { path: update.path, bytes: entryBytes(update) });
      }
      const header = Buffer.alloc(12);
      header.write("DIRC", 0, "latin1");
      header.writeUInt32BE(parsed.version, 4);
      const body = kept.map((entry) => entry.bytes);
      header.writeUInt32BE(body.length, 8);
      const content = Buffer.concat([header, ...body]);
      const checksum = createHash("sha1").update(content).digest();
      writeFileSync(lockPath, Buffer.concat([content, checksum]));
      renameSync(lockPath, indexPath);
      lastWritten = { key: `${indexPath}:${identity(statSync(indexPath))}`, version: parsed.version, entries: kept };
      consumed();
      return false;
    },
    timeoutMs === undefined ? {} : { timeoutMs },
  );
  if (fallback) await run("git", ["reset", "--quiet", "HEAD", "--", ...updates.map((update) => update.path)], { cwd: workdir });
}

import { createHash } from "node:crypto";
import { readFileSync, renameSync, statSync, writeFileSync, type Stats } from "node:fs";
import { withGitLock } from "./file-lock.js";

/** One index entry: its name (bytes, as git stores it) and its fixed header (62 bytes, 64 with extended flags). */
export interface IndexEntry {
  name: Buffer;
  head: Buffer;
}

/** A parsed index of a format this code writes back (versions 2, 3 and 4, no required extension). */
export interface IndexFile {
  version: 2 | 3 | 4;
  /** Sorted by name bytes, then stage, as git keeps them. */
  entries: IndexEntry[];
}

/** git's offset varint (varint.c): seven bits per byte, each continuation adding one. */
function decodeVarint(data: Buffer, at: number): { value: number; next: number } {
  let byte = data[at++]!;
  let value = byte & 127;
  while (byte & 128) {
    byte = data[at++]!;
    value = (value + 1) * 128 + (byte & 127);
  }
  return { value, next: at };
}

function encodeVarint(value: number): Buffer {
  const bytes = [value & 127];
  for (let rest = Math.floor(value / 128); rest > 0; rest = Math.floor(rest / 128)) {
    rest -= 1;
    bytes.unshift(128 | (rest & 127));
  }
  return Buffer.from(bytes);
}

/** Parses an index; undefined for a format this code leaves alone (unknown version, split or sparse index, corrupt). */
export function parseIndex(data: Buffer): IndexFile | undefined {
  if (data.length < 32 || data.toString("latin1", 0, 4) !== "DIRC") return undefined;
  const version = data.readUInt32BE(4);
  if (version !== 2 && version !== 3 && version !== 4) return undefined;
  const count = data.readUInt32BE(8);
  const entries: IndexEntry[] = [];
  let offset = 12;
  let previous: Buffer = Buffer.alloc(0);
  for (let index = 0; index < count; index++) {
    if (offset + 62 > data.length - 20) return undefined;
    const flags = data.readUInt16BE(offset + 60);
    const headLength = flags & 0x4000 ? 64 : 62;
    const head = Buffer.from(data.subarray(offset, offset + headLength));
    const at = offset + headLength;
    let name: Buffer;
    if (version === 4) {
      const { value: strip, next } = decodeVarint(data, at);
      const end = data.indexOf(0, next);
      if (end === -1 || strip > previous.length) return undefined;
      name = Buffer.concat([previous.subarray(0, previous.length - strip), data.subarray(next, end)]);
      offset = end + 1;
    } else {
      const end = data.indexOf(0, at);
      if (end === -1) return undefined;
      name = Buffer.from(data.subarray(at, end));
      const length = end - offset;
      offset += length + (8 - (length % 8));
    }
    entries.push({ name, head });
    previous = name;
  }
  // Optional extensions (upper-case signature) describe the old index (cache-tree, untracked
  // cache, fsmonitor, offsets) and are dropped; git rebuilds them. A required one (split index
  // "link", sparse "sdir") means a format this code leaves to git.
  for (let at = offset; at < data.length - 20;) {
    const signature = data.toString("latin1", at, at + 4);
    if (signature[0]! < "A" || signature[0]! > "Z") return undefined;
    at += 8 + data.readUInt32BE(at + 4);
  }
  return { version, entries };
}

/** Writes an index back in its own version, with git's trailing checksum. */
export function serializeIndex(index: IndexFile): Buffer {
  const header = Buffer.alloc(12);
  header.write("DIRC", 0, "latin1");
  header.writeUInt32BE(index.version, 4);
  header.writeUInt32BE(index.entries.length, 8);
  const parts: Buffer[] = [header];
  let previous: Buffer = Buffer.alloc(0);
  for (const entry of index.entries) {
    const head = Buffer.from(entry.head);
    head.writeUInt16BE((head.readUInt16BE(60) & 0xf000) | Math.min(entry.name.length, 0xfff), 60);
    parts.push(head);
    if (index.version === 4) {
      let common = 0;
      while (common < previous.length && common < entry.name.length && previous[common] === entry.name[common]) common++;
      parts.push(encodeVarint(previous.length - common), entry.name.subarray(common), Buffer.alloc(1));
    } else {
      const length = head.length + entry.name.length;
      parts.push(entry.name, Buffer.alloc(8 - (length % 8)));
    }
    previous = entry.name;
  }
  const content = Buffer.concat(parts);
  return Buffer.concat([content, createHash("sha1").update(content).digest()]);
}

/** A stage-0 entry for a path, with the stat data git compares to tell a clean file. */
export function createIndexEntry(path: string, oid: string, mode: number, stats: Stats): IndexEntry {
  const head = Buffer.alloc(62);
  const seconds = (ms: number) => Math.floor(ms / 1000) >>> 0;
  const nanos = (ms: number) => Math.floor((ms % 1000) * 1e6) >>> 0;
  head.writeUInt32BE(seconds(stats.ctimeMs), 0);
  head.writeUInt32BE(nanos(stats.ctimeMs), 4);
  head.writeUInt32BE(seconds(stats.mtimeMs), 8);
  head.writeUInt32BE(nanos(stats.mtimeMs), 12);
  head.writeUInt32BE(stats.dev >>> 0, 16);
  head.writeUInt32BE(stats.ino >>> 0, 20);
  head.writeUInt32BE(mode, 24);
  head.writeUInt32BE(stats.uid >>> 0, 28);
  head.writeUInt32BE(stats.gid >>> 0, 32);
  head.writeUInt32BE(stats.size >>> 0, 36);
  Buffer.from(oid, "hex").copy(head, 40);
  return { name: Buffer.from(path, "utf8"), head };
}

/** An entry's blob id, mode (as git's octal string) and merge stage. */
export function describeIndexEntry(entry: IndexEntry): { oid: string; mode: string; stage: number } {
  return {
    oid: entry.head.toString("hex", 40, 60),
    mode: entry.head.readUInt32BE(24).toString(8),
    stage: (entry.head.readUInt16BE(60) >> 12) & 3,
  };
}

/** The last index this process wrote, by file identity: a match skips reading and parsing it again. */
let lastWritten: { key: string; index: IndexFile } | undefined;

const identity = (path: string, stats: Stats) => `${path}:${stats.ino}:${stats.size}:${stats.mtimeMs}`;

/**
 * Edits an index under git's own `index.lock` (waiting up to `timeoutMs` for a git process that
 * holds it), and writes it back only when `edit` returns true. Nothing else runs: no git, no hook,
 * no configuration. Returns why it left the index alone when its format is one this code does not
 * write (a split or sparse index, an unknown version): `edit` is then not called.
 */
export async function editIndex(
  indexPath: string,
  edit: (index: IndexFile) => Promise<boolean>,
  { timeoutMs }: { timeoutMs?: number } = {},
): Promise<{ edited: boolean; leftAlone?: string }> {
  return withGitLock(
    indexPath,
    async (lockPath, consumed) => {
      const current = statSync(indexPath, { throwIfNoEntry: false });
      let index: IndexFile | undefined;
      if (!current) index = { version: 2, entries: [] };
      else if (lastWritten?.key === identity(indexPath, current)) index = lastWritten.index;
      else index = parseIndex(readFileSync(indexPath));
      if (!index) return { edited: false, leftAlone: `${indexPath} is in a format the lead does not write (split, sparse or unknown)` };
      const kept = { version: index.version, entries: [...index.entries] };
      if (!(await edit(kept))) return { edited: false };
      writeFileSync(lockPath, serializeIndex(kept));
      renameSync(lockPath, indexPath);
      consumed();
      lastWritten = { key: identity(indexPath, statSync(indexPath)), index: kept };
      return { edited: true };
    },
    timeoutMs === undefined ? {} : { timeoutMs },
  );
}

/** Where `name` is in the sorted entries, or where it would go. */
export function findIndexEntry(entries: readonly IndexEntry[], name: Buffer): { at: number; found: boolean } {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (Buffer.compare(entries[middle]!.name, name) < 0) low = middle + 1;
    else high = middle;
  }
  return { at: low, found: low < entries.length && entries[low]!.name.equals(name) };
}

import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, renameSync, statSync, writeSync, type Stats } from "node:fs";
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
  return parseWithOffsets(data)?.index;
}

/**
 * Parses an index and keeps where each entry's bytes start in `data`: for versions 2 and 3 those
 * bytes are exactly what {@link serializeIndex} writes (git pads the same way), so the first edit
 * of an index file re-encodes only what it changed, as later edits do.
 */
function parseWithOffsets(data: Buffer): { index: IndexFile; serialized: Serialized } | undefined {
  if (data.length < 32 || data.toString("latin1", 0, 4) !== "DIRC") return undefined;
  const version = data.readUInt32BE(4);
  if (version !== 2 && version !== 3 && version !== 4) return undefined;
  const count = data.readUInt32BE(8);
  const entries: IndexEntry[] = [];
  const offsets: number[] = [];
  let offset = 12;
  let previous: Buffer = Buffer.alloc(0);
  for (let index = 0; index < count; index++) {
    if (offset + 62 > data.length - 20) return undefined;
    offsets.push(offset);
    const flags = data.readUInt16BE(offset + 60);
    const headLength = flags & 0x4000 ? 64 : 62;
    // Views into the file's bytes, not copies: 100k entries are 200k buffers otherwise. Nothing
    // writes into an entry's head in place (serializeIndex copies before setting the flags).
    const head = data.subarray(offset, offset + headLength);
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
      name = data.subarray(at, end);
      const length = end - offset;
      offset += length + (8 - (length % 8));
    }
    entries.push({ name, head });
    previous = name;
  }
  offsets.push(offset);
  // Optional extensions (upper-case signature) describe the old index (cache-tree, untracked
  // cache, fsmonitor, offsets) and are dropped; git rebuilds them. A required one (split index
  // "link", sparse "sdir") means a format this code leaves to git.
  for (let at = offset; at < data.length - 20;) {
    const signature = data.toString("latin1", at, at + 4);
    if (signature[0]! < "A" || signature[0]! > "Z") return undefined;
    at += 8 + data.readUInt32BE(at + 4);
  }
  return { index: { version, entries }, serialized: { version, entries: [...entries], content: data, offsets } };
}

/** The bytes of entries as serialized, and where each one starts (one more offset: the end). */
interface Serialized {
  version: IndexFile["version"];
  entries: readonly IndexEntry[];
  content: Buffer;
  offsets: number[];
}

function entryBytes(entry: IndexEntry, version: IndexFile["version"], previous: Buffer): Buffer[] {
  const head = Buffer.from(entry.head);
  head.writeUInt16BE((head.readUInt16BE(60) & 0xf000) | Math.min(entry.name.length, 0xfff), 60);
  if (version === 4) {
    let common = 0;
    while (common < previous.length && common < entry.name.length && previous[common] === entry.name[common]) common++;
    return [head, encodeVarint(previous.length - common), entry.name.subarray(common), Buffer.alloc(1)];
  }
  const length = head.length + entry.name.length;
  return [head, entry.name, Buffer.alloc(8 - (length % 8))];
}

/**
 * Serializes entries; with `reuse` (the last serialization), the unchanged runs at both ends are
 * copied as bytes and only the entries between are encoded, so a commit that touches a few paths
 * of a 100k-entry index encodes a few entries. (Version 4 entries depend on the one before, so a
 * v4 index is encoded whole.)
 */
function serializeEntries(index: IndexFile, reuse: Serialized | undefined): Serialized {
  const { version, entries } = index;
  const header = Buffer.alloc(12);
  header.write("DIRC", 0, "latin1");
  header.writeUInt32BE(version, 4);
  header.writeUInt32BE(entries.length, 8);
  let prefix = 0;
  let suffix = 0;
  if (reuse && reuse.version === version && version !== 4) {
    const old = reuse.entries;
    while (prefix < entries.length && prefix < old.length && entries[prefix] === old[prefix]) prefix++;
    while (
      suffix < entries.length - prefix &&
      suffix < old.length - prefix &&
      entries[entries.length - 1 - suffix] === old[old.length - 1 - suffix]
    )
      suffix++;
  }
  const parts: Buffer[] = [header];
  const offsets: number[] = [];
  let size = 12;
  if (prefix > 0) {
    const start = reuse!.offsets[0]!;
    const end = reuse!.offsets[prefix]!;
    parts.push(reuse!.content.subarray(start, end));
    for (let at = 0; at < prefix; at++) offsets.push(reuse!.offsets[at]! - start + size);
    size += end - start;
  }
  let previous: Buffer = prefix > 0 ? entries[prefix - 1]!.name : Buffer.alloc(0);
  for (let at = prefix; at < entries.length - suffix; at++) {
    offsets.push(size);
    for (const part of entryBytes(entries[at]!, version, previous)) {
      parts.push(part);
      size += part.length;
    }
    previous = entries[at]!.name;
  }
  if (suffix > 0) {
    const old = reuse!;
    const first = old.entries.length - suffix;
    const start = old.offsets[first]!;
    const end = old.offsets[old.entries.length]!;
    parts.push(old.content.subarray(start, end));
    for (let at = first; at < old.entries.length; at++) offsets.push(old.offsets[at]! - start + size);
    size += end - start;
  }
  offsets.push(size);
  return { version, entries: [...entries], content: Buffer.concat(parts, size), offsets };
}

/** Writes an index back in its own version, with git's trailing checksum. */
export function serializeIndex(index: IndexFile): Buffer {
  const { content } = serializeEntries(index, undefined);
  return Buffer.concat([content, createHash("sha1").update(content).digest()]);
}

/** Writes entries and git's trailing checksum without joining them into one more buffer. */
function writeIndexFile(path: string, content: Buffer): void {
  const descriptor = openSync(path, "w");
  try {
    writeAll(descriptor, content);
    writeAll(descriptor, createHash("sha1").update(content).digest());
  } finally {
    closeSync(descriptor);
  }
}

function writeAll(descriptor: number, buffer: Buffer): void {
  for (let written = 0; written < buffer.length;) written += writeSync(descriptor, buffer, written);
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

/**
 * The last index this process wrote, by file identity: a match skips reading and parsing it
 * again, and its serialization is reused for the entries the next edit does not touch.
 */
let lastWritten: { key: string; index: IndexFile; serialized: Serialized } | undefined;

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
      let reuse: Serialized | undefined;
      if (!current) index = { version: 2, entries: [] };
      else if (lastWritten?.key === identity(indexPath, current)) ({ index, serialized: reuse } = lastWritten);
      else ({ index, serialized: reuse } = parseWithOffsets(readFileSync(indexPath)) ?? { index: undefined, serialized: undefined });
      if (!index) return { edited: false, leftAlone: `${indexPath} is in a format the lead does not write (split, sparse or unknown)` };
      const kept = { version: index.version, entries: [...index.entries] };
      if (!(await edit(kept))) return { edited: false };
      const serialized = serializeEntries(kept, reuse);
      writeIndexFile(lockPath, serialized.content);
      renameSync(lockPath, indexPath);
      consumed();
      lastWritten = { key: identity(indexPath, statSync(indexPath)), index: kept, serialized };
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

import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, renameSync, statSync, writeSync, type Stats } from "node:fs";
import { resolvePathInside } from "@bulkhead/core";
import { workingBlobId } from "./build-commit.js";
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
  const scanned = scanIndex(data);
  return scanned && { version: scanned.version, entries: scanned.entries.toArray() };
}

/**
 * Where each entry of a version 2 or 3 index starts (one more offset: where the entries end),
 * found from the name lengths in the flags without copying a name or making an entry object: a
 * 100k-entry index is one pass over 100k flags. Version 4 (names prefix-compressed, each one
 * depending on the one before) is decoded whole. Undefined for a format this code does not write.
 */
function scanIndex(data: Buffer): { version: IndexFile["version"]; entries: IndexEntries } | undefined {
  if (data.length < 32 || data.toString("latin1", 0, 4) !== "DIRC") return undefined;
  const version = data.readUInt32BE(4);
  if (version !== 2 && version !== 3 && version !== 4) return undefined;
  const count = data.readUInt32BE(8);
  const limit = data.length - 20;
  let offset = 12;
  let entries: IndexEntries;
  if (version === 4) {
    const decoded: IndexEntry[] = [];
    let previous: Buffer = Buffer.alloc(0);
    for (let index = 0; index < count; index++) {
      if (offset + 62 > limit) return undefined;
      const headLength = data.readUInt16BE(offset + 60) & 0x4000 ? 64 : 62;
      // Views into the file's bytes, not copies. Nothing writes into an entry's head in place
      // (entryBytes copies before setting the flags).
      const head = data.subarray(offset, offset + headLength);
      const { value: strip, next } = decodeVarint(data, offset + headLength);
      const end = data.indexOf(0, next);
      if (end === -1 || end >= limit || strip > previous.length) return undefined;
      const name = Buffer.concat([previous.subarray(0, previous.length - strip), data.subarray(next, end)]);
      decoded.push({ name, head });
      previous = name;
      offset = end + 1;
    }
    entries = IndexEntries.of(decoded);
  } else {
    const offsets = new Uint32Array(count + 1);
    let newestSeconds = 0;
    for (let index = 0; index < count; index++) {
      if (offset + 62 > limit) return undefined;
      offsets[index] = offset;
      const seconds = ((data[offset + 8]! << 24) | (data[offset + 9]! << 16) | (data[offset + 10]! << 8) | data[offset + 11]!) >>> 0;
      if (seconds > newestSeconds) newestSeconds = seconds;
      // Bytes, not readUInt16BE: this loop runs 100k times before the JIT has warmed up.
      const flags = (data[offset + 60]! << 8) | data[offset + 61]!;
      const at = offset + (flags & 0x4000 ? 64 : 62);
      const short = flags & 0xfff;
      // A name of 0xfff bytes or more says 0xfff: its end is its NUL.
      const end = short < 0xfff ? at + short : data.indexOf(0, at + 0xfff);
      if (end === -1 || end >= limit || data[end] !== 0) return undefined;
      const length = end - offset;
      offset += length + (8 - (length % 8));
    }
    offsets[count] = offset;
    entries = IndexEntries.fromFile({ content: data, offsets, newestSeconds });
  }
  if (offset > limit) return undefined;
  // Optional extensions (upper-case signature) describe the old index (cache-tree, untracked
  // cache, fsmonitor, offsets) and are dropped; git rebuilds them. A required one (split index
  // "link", sparse "sdir") means a format this code leaves to git.
  for (let at = offset; at < limit;) {
    const signature = data.toString("latin1", at, at + 4);
    if (signature[0]! < "A" || signature[0]! > "Z") return undefined;
    at += 8 + data.readUInt32BE(at + 4);
  }
  return { version, entries };
}

/** Serialized entries of a version 2 or 3 index: the bytes, and where each entry starts (one more offset: the end). */
interface IndexBytes {
  content: Buffer;
  offsets: Uint32Array;
  /** The latest modification second of any entry: a run older than an index has no racy entry. */
  newestSeconds: number;
}

/** A run of entries: `count` entries of a file's bytes from entry `from`, or entries in memory. */
type Segment = { bytes: IndexBytes; from: number; count: number } | { list: readonly IndexEntry[]; count: number };

/** More runs than this and the next write joins them into one buffer again. */
const MAX_SEGMENTS = 256;

/**
 * The sorted entries of an index as runs: runs of the file's own bytes (read lazily, an entry
 * object made only for a position someone looks at) and runs of entries in memory that an edit
 * put in. An edit of a few paths of a 100k-entry index splits a run or two, and writing it back
 * copies the untouched runs as bytes: no whole-index parse, no re-encoding, on the first edit as
 * on later ones. Runs are never changed in place, so a copy ({@link clone}) is independent.
 */
export class IndexEntries {
  #segments: Segment[];
  #starts: number[] | undefined;
  #length: number;

  private constructor(segments: Segment[]) {
    this.#segments = segments.filter((segment) => segment.count > 0);
    this.#length = this.#segments.reduce((sum, segment) => sum + segment.count, 0);
  }

  /** Entries in memory. */
  static of(entries: readonly IndexEntry[]): IndexEntries {
    return new IndexEntries([{ list: [...entries], count: entries.length }]);
  }

  /** @internal Every entry of a version 2 or 3 file's bytes. */
  static fromFile(bytes: IndexBytes): IndexEntries {
    return new IndexEntries([{ bytes, from: 0, count: bytes.offsets.length - 1 }]);
  }

  get length(): number {
    return this.#length;
  }

  /** An independent copy (runs are shared, never changed in place). */
  clone(): IndexEntries {
    return new IndexEntries([...this.#segments]);
  }

  /** The entry at `position` (0 ≤ position < length). */
  at(position: number): IndexEntry {
    const { segment, within } = this.#locate(position);
    if ("list" in segment) return segment.list[within]!;
    return entryOfFile(segment.bytes, segment.from + within);
  }

  /** The name at `position`, as a view (no entry object for a file's run). */
  nameAt(position: number): Buffer {
    const { segment, within } = this.#locate(position);
    if ("list" in segment) return segment.list[within]!.name;
    return nameOfFile(segment.bytes, segment.from + within);
  }

  /** Where `name` is, or where it would go (binary search over the names). */
  find(name: Buffer): { at: number; found: boolean } {
    let low = 0;
    let high = this.#length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (Buffer.compare(this.nameAt(middle), name) < 0) low = middle + 1;
      else high = middle;
    }
    return { at: low, found: low < this.#length && this.nameAt(low).equals(name) };
  }

  /** Removes `deleteCount` entries at `start` and puts `items` there, as Array.prototype.splice does (without returning them). */
  splice(start: number, deleteCount: number, ...items: IndexEntry[]): void {
    const begin = Math.max(0, Math.min(start, this.#length));
    const end = Math.min(this.#length, begin + Math.max(0, deleteCount));
    const before: Segment[] = [];
    const after: Segment[] = [];
    let position = 0;
    for (const segment of this.#segments) {
      const segmentEnd = position + segment.count;
      if (segmentEnd <= begin) before.push(segment);
      else if (position >= end) after.push(segment);
      else {
        if (position < begin) before.push(slice(segment, 0, begin - position));
        if (segmentEnd > end) after.push(slice(segment, end - position, segment.count));
      }
      position = segmentEnd;
    }
    const inserted: Segment[] = items.length > 0 ? [{ list: items, count: items.length }] : [];
    this.#segments = [...before, ...inserted, ...after].filter((segment) => segment.count > 0);
    this.#length += items.length - (end - begin);
    this.#starts = undefined;
  }

  /** Puts each entry of `replacements` at its position (0 ≤ position < length), in one pass over the runs. */
  replace(replacements: ReadonlyMap<number, IndexEntry>): void {
    const positions = [...replacements.keys()].sort((left, right) => left - right);
    const segments: Segment[] = [];
    let start = 0;
    let next = 0;
    for (const segment of this.#segments) {
      let from = 0;
      while (next < positions.length && positions[next]! < start + segment.count) {
        const within = positions[next]! - start;
        segments.push(slice(segment, from, within), { list: [replacements.get(positions[next]!)!], count: 1 });
        from = within + 1;
        next++;
      }
      segments.push(slice(segment, from, segment.count));
      start += segment.count;
    }
    this.#segments = segments.filter((segment) => segment.count > 0);
    this.#starts = undefined;
  }

  /** Every entry as an object (a whole parse: for tests and small indexes). */
  toArray(): IndexEntry[] {
    return Array.from({ length: this.#length }, (_, position) => this.at(position));
  }

  /** @internal The runs, in order. */
  get segments(): readonly Segment[] {
    return this.#segments;
  }

  #locate(position: number): { segment: Segment; within: number } {
    if (position < 0 || position >= this.#length) throw new RangeError(`index entry ${position} of ${this.#length}`);
    if (!this.#starts) {
      let sum = 0;
      this.#starts = this.#segments.map((segment) => {
        const start = sum;
        sum += segment.count;
        return start;
      });
    }
    const starts = this.#starts;
    let low = 0;
    let high = starts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >>> 1;
      if (starts[middle]! <= position) low = middle;
      else high = middle - 1;
    }
    return { segment: this.#segments[low]!, within: position - starts[low]! };
  }
}

function slice(segment: Segment, from: number, to: number): Segment {
  if ("list" in segment) return { list: segment.list.slice(from, to), count: to - from };
  return { bytes: segment.bytes, from: segment.from + from, count: to - from };
}

function nameOfFile({ content, offsets }: IndexBytes, index: number): Buffer {
  const offset = offsets[index]!;
  const flags = content.readUInt16BE(offset + 60);
  const at = offset + (flags & 0x4000 ? 64 : 62);
  const short = flags & 0xfff;
  return content.subarray(at, short < 0xfff ? at + short : content.indexOf(0, at + 0xfff));
}

function entryOfFile(bytes: IndexBytes, index: number): IndexEntry {
  const offset = bytes.offsets[index]!;
  const headLength = bytes.content.readUInt16BE(offset + 60) & 0x4000 ? 64 : 62;
  return { name: nameOfFile(bytes, index), head: bytes.content.subarray(offset, offset + headLength) };
}

function entryBytes(entry: IndexEntry, version: IndexFile["version"], previous: Buffer): Buffer {
  const head = Buffer.from(entry.head);
  head.writeUInt16BE((head.readUInt16BE(60) & 0xf000) | Math.min(entry.name.length, 0xfff), 60);
  if (version === 4) {
    let common = 0;
    while (common < previous.length && common < entry.name.length && previous[common] === entry.name[common]) common++;
    return Buffer.concat([head, encodeVarint(previous.length - common), entry.name.subarray(common), Buffer.alloc(1)]);
  }
  const length = head.length + entry.name.length;
  return Buffer.concat([head, entry.name, Buffer.alloc(8 - (length % 8))]);
}

/**
 * The bytes of an index without its checksum, as parts: the header, then per run either the
 * file's bytes for it (a view: in versions 2 and 3 an entry does not depend on the one before,
 * so git's bytes for it are copied as they are) or its entries encoded.
 */
function serializeParts(version: IndexFile["version"], entries: IndexEntries): Buffer[] {
  const header = Buffer.alloc(12);
  header.write("DIRC", 0, "latin1");
  header.writeUInt32BE(version, 4);
  header.writeUInt32BE(entries.length, 8);
  const parts: Buffer[] = [header];
  let previous: Buffer = Buffer.alloc(0);
  for (const segment of entries.segments) {
    if ("list" in segment) {
      for (const entry of segment.list) {
        parts.push(entryBytes(entry, version, previous));
        previous = entry.name;
      }
    } else {
      const { content, offsets } = segment.bytes;
      parts.push(content.subarray(offsets[segment.from]!, offsets[segment.from + segment.count]!));
    }
  }
  return parts;
}

/** Joins parts into one run of a file's bytes (version 2 or 3), its offsets found again by a scan. */
function joinRuns(parts: readonly Buffer[]): IndexEntries {
  const content = Buffer.concat([...parts, Buffer.alloc(20)]);
  return scanIndex(content)?.entries ?? IndexEntries.fromFile({ content, offsets: new Uint32Array([12]), newestSeconds: 0 });
}

/** Writes an index back in its own version, with git's trailing checksum. */
export function serializeIndex(index: IndexFile): Buffer {
  const content = Buffer.concat(serializeParts(index.version, IndexEntries.of(index.entries)));
  return Buffer.concat([content, createHash("sha1").update(content).digest()]);
}

/**
 * Writes the parts and git's trailing checksum, hashing as it writes: the 10 MB of a 100k-entry
 * index are never joined into one more buffer.
 */
function writeIndexFile(path: string, parts: readonly Buffer[]): void {
  const hash = createHash("sha1");
  const descriptor = openSync(path, "w");
  try {
    for (const part of parts) {
      hash.update(part);
      writeAll(descriptor, part);
    }
    writeAll(descriptor, hash.digest());
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

/** An index as {@link editIndex} hands it to an edit: its version and its entries, read lazily. */
export interface EditableIndex {
  version: IndexFile["version"];
  entries: IndexEntries;
}

/**
 * The last index this process wrote, by file identity: a match skips reading it again, and its
 * runs (the file's bytes it came from, the entries edits put in) are reused as they are.
 */
let lastWritten: { key: string; index: EditableIndex } | undefined;

const identity = (path: string, stats: Stats) => `${path}:${stats.ino}:${stats.size}:${stats.mtimeMs}`;

/** An entry's modification time in whole seconds: git (built without USE_NSEC, as Debian's is) compares no finer. */
const entryMtimeSeconds = (head: Buffer, at = 0) => head.readUInt32BE(at + 8);

/**
 * Whether the working-tree file still has the entry's stat data (git's `ce_match_stat_basic`, to
 * the second) but other content: a "racily clean" entry, which git would wrongly trust once the
 * index it sits in is newer than the file. Lost names (not UTF-8) and links on the way count as
 * changed, so they are smudged too.
 */
function racilyClean(workdir: string, entry: IndexEntry): boolean {
  const path = entry.name.toString("utf8");
  if (!Buffer.from(path, "utf8").equals(entry.name)) return true;
  const resolved = resolvePathInside(workdir, path, { links: "refuse" });
  if (!resolved.ok) return true;
  const stats = resolved.stats;
  if (!stats) return false;
  const head = entry.head;
  const sameStat =
    head.readUInt32BE(36) === stats.size >>> 0 &&
    entryMtimeSeconds(head) === Math.floor(stats.mtimeMs / 1000) >>> 0 &&
    head.readUInt32BE(0) === Math.floor(stats.ctimeMs / 1000) >>> 0 &&
    head.readUInt32BE(20) === stats.ino >>> 0;
  if (!sameStat) return false;
  if ((head.readUInt32BE(24) & 0o170000) === 0o160000) return false;
  return workingBlobId(resolved.absolute, stats) !== head.toString("hex", 40, 60);
}

/**
 * git's answer to the "racy git" problem (Documentation/technical/racy-git.txt), done before an
 * index is written: an entry whose file changed within the same second as the index it came from
 * keeps the old stat data, and git trusts it only while the index is no newer than the file.
 * Rewriting the index makes it newer, so each such entry (modified no earlier than the index as
 * read) is checked against its file, and one whose content changed gets size 0 (git's
 * `ce_smudge_racily_clean_entry`): git then hashes the file instead of trusting its stat.
 */
function smudgeRacilyClean(entries: IndexEntries, workdir: string, indexSeconds: number): void {
  const smudged = new Map<number, IndexEntry>();
  let position = 0;
  for (const segment of entries.segments) {
    if ("bytes" in segment && segment.bytes.newestSeconds < indexSeconds) {
      position += segment.count;
      continue;
    }
    for (let within = 0; within < segment.count; within++, position++) {
      const seconds =
        "list" in segment
          ? entryMtimeSeconds(segment.list[within]!.head)
          : entryMtimeSeconds(segment.bytes.content, segment.bytes.offsets[segment.from + within]!);
      if (seconds < indexSeconds) continue;
      const entry = entries.at(position);
      if ((entry.head.readUInt16BE(60) >> 12) & 3 || !racilyClean(workdir, entry)) continue;
      const head = Buffer.from(entry.head);
      head.writeUInt32BE(0, 36);
      smudged.set(position, { name: entry.name, head });
    }
  }
  if (smudged.size > 0) entries.replace(smudged);
}

/**
 * Edits an index under git's own `index.lock` (waiting up to `timeoutMs` for a git process that
 * holds it), and writes it back only when `edit` returns true, with racily clean entries of
 * `workdir` (the checkout the index describes) smudged as git smudges them. Nothing else runs:
 * no git, no hook, no configuration. Returns why it left the index alone when its format is one
 * this code does not write (a split or sparse index, an unknown version): `edit` is then not called.
 */
export async function editIndex(
  { indexPath, workdir }: { indexPath: string; workdir: string },
  edit: (index: EditableIndex) => Promise<boolean>,
  { timeoutMs }: { timeoutMs?: number } = {},
): Promise<{ edited: boolean; leftAlone?: string }> {
  return withGitLock(
    indexPath,
    async (lockPath, consumed) => {
      const current = statSync(indexPath, { throwIfNoEntry: false });
      let index: EditableIndex | undefined;
      if (!current) index = { version: 2, entries: IndexEntries.of([]) };
      else if (lastWritten?.key === identity(indexPath, current)) index = lastWritten.index;
      else index = scanIndex(readFileSync(indexPath));
      if (!index) return { edited: false, leftAlone: `${indexPath} is in a format the lead does not write (split, sparse or unknown)` };
      const kept: EditableIndex = { version: index.version, entries: index.entries.clone() };
      if (!(await edit(kept))) return { edited: false };
      if (current) smudgeRacilyClean(kept.entries, workdir, Math.floor(current.mtimeMs / 1000));
      const parts = serializeParts(kept.version, kept.entries);
      // Each commit adds a run or two; past MAX_SEGMENTS they are joined once, so a lookup stays short.
      if (kept.version !== 4 && kept.entries.segments.length > MAX_SEGMENTS) kept.entries = joinRuns(parts);
      writeIndexFile(lockPath, parts);
      renameSync(lockPath, indexPath);
      consumed();
      lastWritten = { key: identity(indexPath, statSync(indexPath)), index: kept };
      return { edited: true };
    },
    timeoutMs === undefined ? {} : { timeoutMs },
  );
}

/** Where `name` is in the sorted entries, or where it would go. */
export function findIndexEntry(entries: readonly IndexEntry[] | IndexEntries, name: Buffer): { at: number; found: boolean } {
  if (entries instanceof IndexEntries) return entries.find(name);
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (Buffer.compare(entries[middle]!.name, name) < 0) low = middle + 1;
    else high = middle;
  }
  return { at: low, found: low < entries.length && entries[low]!.name.equals(name) };
}

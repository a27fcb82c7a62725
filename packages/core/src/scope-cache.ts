import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "./write-file-atomic.js";

/** What the cache remembers about one file's content. */
export interface CachedContent {
  /** Device, inode, size, mtime (ms) and ctime (ms) when it was read: any difference means read again. */
  identity: readonly [dev: number, ino: number, size: number, mtimeMs: number, ctimeMs: number];
  /** sha256 of the bytes, hex; absent when only the size was needed (the byte estimate counts no text). */
  hash?: string;
  bytes: number;
  binary: boolean;
  /**
   * False when the file changed so shortly before it was read that a later change could keep the
   * same timestamps ("racily clean", as git calls it): such an entry is used in this process but
   * never written to disk. @default true
   */
  settled?: boolean;
}

/**
 * One directory as a walk saw it: its identity, the `.gitignore` rules that applied, and the
 * entries left after them. While the directory's fingerprint and the rules are unchanged, a walk
 * reuses the entries: no listing, no ignore evaluation.
 */
export interface CachedListing {
  /** Device, inode, mtime and ctime of the directory: adding, removing or renaming an entry changes it. */
  fingerprint: string;
  /** A key of the ignore rules (every `.gitignore` text from the root down) the entries were filtered with. */
  rules: string;
  /** Whether the directory holds a `.gitignore` (its text is part of the rules of everything below). */
  hasGitignore: boolean;
  /** Entries kept, sorted by name: `f` file, `d` directory, `l` symbolic link (ignored ones and `.git` left out). */
  entries: readonly (readonly [name: string, kind: "f" | "d" | "l"])[];
  /** As in {@link CachedContent.settled}. @default true */
  settled?: boolean;
}

/**
 * Remembers what resolving a scope learned, so an unchanged tree re-resolves without reading,
 * listing or re-counting: file → fingerprint (device, inode, size, mtime, ctime) and content hash,
 * content hash + counter name → tokens, and directory → its entries after `.gitignore`. A file
 * seen before costs one `lstat`; one never seen is read once. Bounded: the oldest entries go first.
 * Pass the same cache to successive {@link resolveScope} calls; with `directory` it persists
 * across processes (see {@link createScopeCache}).
 */
export interface ScopeCache {
  readonly maxEntries: number;
  /** What is known of a file, by its absolute path (under the repo's real path). */
  getContent(file: string): CachedContent | undefined;
  setContent(file: string, content: CachedContent): void;
  getTokens(counterName: string, hash: string): number | undefined;
  setTokens(counterName: string, hash: string, tokens: number): void;
  /** What is known of a directory, by the repo's real path and the directory's path in it. */
  getListing(directory: string): CachedListing | undefined;
  setListing(directory: string, listing: CachedListing): void;
  /** Entries held now, all maps together. */
  readonly size: number;
  /** Where the cache persists, or undefined for a memory-only cache. */
  readonly directory: string | undefined;
  /** Writes what changed since the load or the last save (atomically); a no-op for a memory-only cache. */
  save(): Promise<void>;
  clear(): void;
}

export interface ScopeCacheOptions {
  /** Most entries kept in each map (files, token counts, directories). @default 500_000 */
  maxEntries?: number;
  /**
   * A directory to persist the cache in (`scope-cache.v1` inside it), loaded now and written by
   * {@link ScopeCache.save}. A missing, truncated or corrupt file (its checksum does not match)
   * is ignored and rebuilt. Without it the cache lives in memory only.
   */
  directory?: string;
}

/** The cache file's first line: the format and the sha256 of the rest, so a damaged file is never trusted. */
const MAGIC = "bulkhead-scope-cache 2";
const FILE_NAME = "scope-cache.v1";

interface CacheFile {
  contents: [string, number, number, number, number, number, number, string | null, 0 | 1][];
  tokens: [string, string, number][];
  listings: [string, string, string, 0 | 1, [string, "f" | "d" | "l"][]][];
}

function bounded<TValue>(map: Map<string, TValue>, key: string, value: TValue, maxEntries: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > maxEntries) map.delete(map.keys().next().value as string);
}

const isKind = (kind: unknown): kind is "f" | "d" | "l" => kind === "f" || kind === "d" || kind === "l";

/**
 * Reads a file written by {@link writeChecksummedJson}: undefined when it is missing, truncated,
 * damaged (the sha256 in its first line does not match the rest) or of another format.
 *
 * Exported from `@bulkhead/core/scope` only (for the command line), not the main entry.
 */
export function readChecksummedJson(path: string, format: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  const newline = text.indexOf("\n");
  const body = text.slice(newline + 1);
  if (newline === -1 || text.slice(0, newline) !== `${format} ${createHash("sha256").update(body).digest("hex")}`) return undefined;
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * Writes JSON after a first line naming the format and the sha256 of the rest, atomically: a
 * reader sees the old file or the new, and never trusts one that was damaged since.
 *
 * Exported from `@bulkhead/core/scope` only (for the command line), not the main entry.
 */
export async function writeChecksummedJson(path: string, format: string, value: unknown): Promise<void> {
  const body = JSON.stringify(value);
  // A cache: losing the last write to a power cut costs a rebuild, so no fsync.
  await writeFileAtomic(path, `${format} ${createHash("sha256").update(body).digest("hex")}\n${body}`, { fsync: false });
}

function load(path: string): CacheFile | undefined {
  const parsed = readChecksummedJson(path, MAGIC) as Partial<CacheFile> | undefined;
  return parsed && Array.isArray(parsed.contents) && Array.isArray(parsed.tokens) && Array.isArray(parsed.listings)
    ? (parsed as CacheFile)
    : undefined;
}

/**
 * Creates a {@link ScopeCache}: in memory, or persisted in `directory` so a new process (the
 * `bulkhead` command line) resolves an unchanged tree without reading a file or loading a
 * tokenizer. An entry is trusted only while the file's or directory's fingerprint still matches;
 * an entry taken while its file was still changing is kept out of the file.
 *
 * @example
 * const cache = createScopeCache({ directory: join(homedir(), ".bulkhead", "cache") });
 * await resolveScope(spec, { repos, counter, cache }); // reads, counts, saves
 * // a new process, the same directory: only stats
 */
export function createScopeCache({ maxEntries = 500_000, directory }: ScopeCacheOptions = {}): ScopeCache {
  const contents = new Map<string, CachedContent>();
  // Counter name → content hash → tokens: the lookup hashes only the hash string, which a warm
  // resolve holds from the file's entry (V8 keeps a string's hash), never a freshly joined key.
  const tokens = new Map<string, Map<string, number>>();
  const tokensOf = (counterName: string) => {
    let counts = tokens.get(counterName);
    if (!counts) tokens.set(counterName, (counts = new Map()));
    return counts;
  };
  const tokenCount = () => [...tokens.values()].reduce((sum, counts) => sum + counts.size, 0);
  const listings = new Map<string, CachedListing>();
  let changed = false;
  const file = directory === undefined ? undefined : join(directory, FILE_NAME);
  const loaded = file === undefined ? undefined : load(file);
  if (loaded) {
    // Entries of the wrong shape are dropped one by one; the checksum already vouches for the bytes.
    for (const entry of loaded.contents) {
      if (!Array.isArray(entry)) continue;
      const [key, dev, ino, size, mtimeMs, ctimeMs, bytes, hash, binary] = entry;
      if (typeof key !== "string" || ![dev, ino, size, mtimeMs, ctimeMs, bytes].every((value) => typeof value === "number")) continue;
      const content: CachedContent = { identity: [dev, ino, size, mtimeMs, ctimeMs], bytes, binary: binary === 1 };
      if (typeof hash === "string") content.hash = hash;
      contents.set(key, content);
    }
    for (const entry of loaded.tokens) {
      if (!Array.isArray(entry) || typeof entry[0] !== "string" || typeof entry[1] !== "string" || !Number.isSafeInteger(entry[2]))
        continue;
      tokensOf(entry[0]).set(entry[1], entry[2]);
    }
    for (const entry of loaded.listings) {
      if (!Array.isArray(entry)) continue;
      const [key, fingerprint, rules, hasGitignore, entries] = entry;
      if (typeof key !== "string" || typeof fingerprint !== "string" || typeof rules !== "string" || !Array.isArray(entries)) continue;
      if (!entries.every((item) => Array.isArray(item) && typeof item[0] === "string" && isKind(item[1]))) continue;
      listings.set(key, { fingerprint, rules, hasGitignore: hasGitignore === 1, entries });
    }
  }
  return {
    maxEntries,
    directory,
    getContent: (key) => contents.get(key),
    setContent(key, content) {
      changed = true;
      bounded(contents, key, content, maxEntries);
    },
    getTokens: (counterName, hash) => tokens.get(counterName)?.get(hash),
    setTokens(counterName, hash, count) {
      changed = true;
      bounded(tokensOf(counterName), hash, count, maxEntries);
    },
    getListing: (key) => listings.get(key),
    setListing(key, listing) {
      changed = true;
      bounded(listings, key, listing, maxEntries);
    },
    get size() {
      return contents.size + tokenCount() + listings.size;
    },
    async save() {
      if (file === undefined || !changed) return;
      const data: CacheFile = { contents: [], tokens: [], listings: [] };
      for (const [counterName, counts] of tokens) for (const [hash, count] of counts) data.tokens.push([counterName, hash, count]);
      for (const [key, content] of contents)
        if (content.settled !== false)
          data.contents.push([key, ...content.identity, content.bytes, content.hash ?? null, content.binary ? 1 : 0]);
      for (const [key, listing] of listings)
        if (listing.settled !== false)
          data.listings.push([
            key,
            listing.fingerprint,
            listing.rules,
            listing.hasGitignore ? 1 : 0,
            listing.entries as [string, "f" | "d" | "l"][],
          ]);
      await writeChecksummedJson(file, MAGIC, data);
      changed = false;
    },
    clear() {
      contents.clear();
      tokens.clear();
      listings.clear();
      changed = true;
    },
  };
}

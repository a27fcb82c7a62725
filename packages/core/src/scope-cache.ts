/** What the cache remembers about one file's content. */
export interface CachedContent {
  /** Size, mtime, ctime and inode when it was read: a different fingerprint means read again. */
  fingerprint: string;
  /** sha256 of the bytes, hex. */
  hash: string;
  bytes: number;
  binary: boolean;
}

/**
 * Remembers what resolving a scope learned, so an unchanged tree re-resolves without reading or
 * re-counting: file path → fingerprint (size, mtime, ctime, inode) and content hash, and content
 * hash + counter name → tokens. A file seen before costs one `stat`; one never seen is read
 * without a separate `stat`. Bounded: the oldest entries go first. Pass the same cache to
 * successive {@link resolveScope} calls.
 */
export interface ScopeCache {
  readonly maxEntries: number;
  getContent(file: string): CachedContent | undefined;
  setContent(file: string, content: CachedContent): void;
  getTokens(counterName: string, hash: string): number | undefined;
  setTokens(counterName: string, hash: string, tokens: number): void;
  /** Entries held now, both maps together. */
  readonly size: number;
  clear(): void;
}

export interface ScopeCacheOptions {
  /** Most entries kept in each of the two maps. @default 500_000 */
  maxEntries?: number;
}

function bounded<TValue>(map: Map<string, TValue>, key: string, value: TValue, maxEntries: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > maxEntries) map.delete(map.keys().next().value as string);
}

/**
 * Creates an in-memory {@link ScopeCache}.
 *
 * @example
 * const cache = createScopeCache();
 * await resolveScope(spec, { repos, cache }); // reads and counts
 * await resolveScope(spec, { repos, cache }); // only stats
 */
export function createScopeCache({ maxEntries = 500_000 }: ScopeCacheOptions = {}): ScopeCache {
  const contents = new Map<string, CachedContent>();
  const tokens = new Map<string, number>();
  return {
    maxEntries,
    getContent: (file) => contents.get(file),
    setContent: (file, content) => bounded(contents, file, content, maxEntries),
    getTokens: (counterName, hash) => tokens.get(`${counterName}\u0000${hash}`),
    setTokens: (counterName, hash, count) => bounded(tokens, `${counterName}\u0000${hash}`, count, maxEntries),
    get size() {
      return contents.size + tokens.size;
    },
    clear() {
      contents.clear();
      tokens.clear();
    },
  };
}

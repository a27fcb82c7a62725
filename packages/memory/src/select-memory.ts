import {
  createByteEstimateCounter,
  createScopeMatcher,
  InvalidArgumentError,
  isPathWithin,
  throwIfAborted,
  validateOptions,
  type ResolvedScope,
  type TaskSpec,
  type TokenCounter,
} from "@bulkhead/core";
import { z } from "zod";
import type { MemoryEntry } from "./memory-entry.js";
import type { MemoryUsage } from "./memory-store.js";
import { MEMORY_SECTION_HEADER, memorySectionText, renderMemoryBlock } from "./render-memory-section.js";

/** The memory share of the context-read budget when no other is given. */
export const DEFAULT_MEMORY_SHARE = 0.1;

/** How closely an entry matches the task: a path in its scope, one of its repos, or the whole workspace. */
export type MemorySpecificity = "path" | "repo" | "workspace";

/** An entry chosen for the task, with its tokens (as rendered in the section). */
export interface SelectedMemoryEntry {
  entry: MemoryEntry;
  tokens: number;
  specificity: MemorySpecificity;
}

/** What {@link selectMemory} chose, in the order the section renders it (most specific first). */
export interface MemorySelection {
  selected: SelectedMemoryEntry[];
  /** Ids of entries that apply but did not fit the share, in rank order. */
  notFitted: string[];
  /** Tokens of the rendered section (`renderMemorySection`), 0 when nothing was selected. */
  tokens: number;
  /** The memory share, in tokens. */
  budget: number;
  /** The context-read limit the share came from (min of `context_read` or `max_tokens`, and `session_total`). */
  contextRead: number;
  /** The scope's own tokens, when a resolved scope was given: scope + memory ≤ contextRead. */
  scopeTokens?: number;
  /** Entries that apply (accepted, unexpired, in scope), selected or not. */
  applicable: number;
  /** The counter's name and whether its counts are estimates. */
  counter: string;
  estimated: boolean;
}

export interface SelectMemoryOptions {
  /**
   * The store's entries (`(await store.list()).entries`); only accepted, unexpired ones are
   * considered. Treated as values: token counts are cached by entry object and update time, so
   * change an entry through its store (which returns a new object with a new `updatedAt`), not in place.
   */
  entries: readonly MemoryEntry[];
  /** Use counts (`(await store.list()).usage`): among equals, the more used entry first. */
  usage?: Readonly<Record<string, MemoryUsage>>;
  spec: TaskSpec;
  /** The resolved scope: an entry applies when a file the agent may see lies under its path, and the share is cut to what the scope leaves of the context budget. */
  scope?: Pick<ResolvedScope, "files" | "totals">;
  /** Counts the rendered entries. @default the byte estimate */
  counter?: TokenCounter;
  /** The memory share as a fraction of the context-read limit. @default 0.1 */
  share?: number;
  /** The memory share in tokens; overrides `share`. */
  maxTokens?: number;
  /** Entries expiring at or before this time are left out. @default now */
  now?: Date;
  abortSignal?: AbortSignal;
}

const optionsSchema = z.object({
  // Entries come from a store, which validated each one; checking 10,000 again here would cost more than selecting.
  entries: z.custom<readonly MemoryEntry[]>((value) => Array.isArray(value), "expected memory entries (a list)"),
  usage: z.record(z.string(), z.object({ uses: z.number(), lastUsedAt: z.string().optional() })).optional(),
  spec: z.custom<TaskSpec>((value) => Array.isArray((value as TaskSpec | undefined)?.contextScope?.repos), "expected a TaskSpec"),
  scope: z
    .custom<Pick<ResolvedScope, "files" | "totals">>(
      (value) => Array.isArray((value as ResolvedScope | undefined)?.files) && typeof (value as ResolvedScope).totals?.tokens === "number",
      "expected a ResolvedScope",
    )
    .optional(),
  counter: z
    .custom<TokenCounter>((value) => typeof (value as TokenCounter | undefined)?.count === "function", "expected a TokenCounter")
    .optional(),
  share: z.number().gt(0).max(1).optional(),
  maxTokens: z.number().int().nonnegative().optional(),
  now: z.date().optional(),
  abortSignal: z.custom<AbortSignal>((value) => value instanceof AbortSignal, "expected an AbortSignal").optional(),
});

/**
 * How many entries that do not fit are rendered and counted before fitting stops: the gap left
 * by the first is filled from the next entries in rank order, and once this many have missed the
 * rest are listed as not fitted without being rendered, so the work is bounded by what fits.
 */
const FILL_MISSES = 32;

/** Token counts of rendered blocks, by counter and text: entries change rarely, tasks select often. */
const countCache = new Map<string, Map<string, number>>();
const COUNT_CACHE_LIMIT = 100_000;
/** Parsed ISO times: many entries share a time text, and Date.parse is the loop's main cost. */
const timeCache = new Map<string, number>();
function timeOf(text: string): number {
  let time = timeCache.get(text);
  if (time === undefined) {
    time = Date.parse(text) || 0;
    if (timeCache.size >= COUNT_CACHE_LIMIT) timeCache.clear();
    timeCache.set(text, time);
  }
  return time;
}
/** The same, by entry object: selecting again over the same listing renders nothing twice. */
const blockCache = new WeakMap<MemoryEntry, { counter: string; specificity: MemorySpecificity; updatedAt: string; tokens: number }[]>();

interface Candidate {
  entry: MemoryEntry;
  specificity: MemorySpecificity;
  /** 3 path, 2 repo, 1 workspace: compared as a number. */
  level: number;
  /**
   * Level and narrowness in one number, so most comparisons end at one subtraction. Narrowness:
   * the path's depth for a path match, minus the number of repos for a repo match.
   */
  rank: number;
  /** Milliseconds since the epoch: ISO texts of different precision do not compare as strings. */
  updated: number;
  uses: number;
  lastUsed: number;
}

/** Most specific first, then most recently updated, then most used; the id breaks ties, so the order is total. */
function compareCandidates(left: Candidate, right: Candidate): number {
  return (
    right.rank - left.rank ||
    right.updated - left.updated ||
    compareUse(left, right) ||
    (left.entry.id < right.entry.id ? -1 : left.entry.id > right.entry.id ? 1 : 0)
  );
}

/** Among entries of one rank and update time: the more used, then the more recently used. */
function compareUse(left: Candidate, right: Candidate): number {
  return right.uses - left.uses || right.lastUsed - left.lastUsed;
}

/** Groups `items` by `key` in order of first appearance within each group, groups by key descending. */
function groupDescending(items: Candidate[], key: (item: Candidate) => number): Candidate[][] {
  const groups = new Map<number, Candidate[]>();
  for (const item of items) {
    const value = key(item);
    const group = groups.get(value);
    if (group) group.push(item);
    else groups.set(value, [item]);
  }
  if (groups.size === 1) return [items];
  return [...groups.keys()].sort((left, right) => right - left).map((value) => groups.get(value)!);
}

/**
 * Puts candidates in rank order ({@link compareCandidates}) without a comparison sort where it
 * can: a store lists by id, and the listing index hands them out by (update time, id), so
 * grouping by rank and then by update time keeps the id order among equals and costs a few map
 * operations per entry instead of ~log₂ n comparisons. Use counts then order only the runs of
 * equal rank and time. Any other order gets the full comparison sort.
 */
function rankOrder(candidates: Candidate[], byTime: boolean, hasUsage: boolean): Candidate[] {
  if (!byTime) {
    let inIdOrder = true;
    for (let index = 1; inIdOrder && index < candidates.length; index++)
      inIdOrder = candidates[index - 1]!.entry.id < candidates[index]!.entry.id;
    if (!inIdOrder) return candidates.sort(compareCandidates);
  }
  const ordered: Candidate[] = [];
  for (const group of groupDescending(candidates, (item) => item.rank)) {
    if (byTime) ordered.push(...group);
    else for (const run of groupDescending(group, (item) => item.updated)) ordered.push(...run);
  }
  if (!hasUsage) return ordered;
  // Runs of the same rank and time: a stable sort on use keeps the id order among equals.
  for (let start = 0; start < ordered.length;) {
    let end = start + 1;
    while (end < ordered.length && ordered[end]!.rank === ordered[start]!.rank && ordered[end]!.updated === ordered[start]!.updated) end++;
    if (end - start > 1) {
      const run = ordered.slice(start, end);
      if (run.some((item) => item.uses > 0 || item.lastUsed > 0)) {
        run.sort(compareUse);
        for (let index = 0; index < run.length; index++) ordered[start + index] = run[index]!;
      }
    }
    start = end;
  }
  return ordered;
}

/**
 * One listing's accepted entries, ordered and grouped once: by repo named, and workspace-wide,
 * so a task's selection visits only the entries that can apply to its repos rather than every
 * entry in the store. Built on the second selection over one listing (several tasks planned from
 * one `list()`), since building it costs more than one plain pass; reused while the list holds
 * the same entry objects (checked element by element, which costs far less than a filter).
 */
interface ListingIndex {
  snapshot: MemoryEntry[];
  /** Accepted entries, most recently updated first, then by id. */
  order: MemoryEntry[];
  updated: Float64Array;
  /** Expiry in milliseconds, Infinity when none. */
  expires: Float64Array;
  /** Positions in `order` of the entries naming each repo, ascending. */
  byRepo: Map<string, number[]>;
  /** Positions in `order` of the workspace-wide entries, ascending. */
  workspace: number[];
}

const indexCache = new WeakMap<readonly MemoryEntry[], ListingIndex>();
/** Listings selected from once: the next selection over one builds its index. */
const seenListings = new WeakSet<readonly MemoryEntry[]>();

function listingIndex(entries: readonly MemoryEntry[]): ListingIndex | undefined {
  if (!seenListings.has(entries)) {
    seenListings.add(entries);
    return undefined;
  }
  const cached = indexCache.get(entries);
  if (cached && cached.snapshot.length === entries.length) {
    let same = true;
    for (let index = 0; same && index < entries.length; index++) same = cached.snapshot[index] === entries[index];
    if (same) return cached;
  }
  const accepted = entries.filter((entry) => entry.status === "accepted");
  const times = new Float64Array(accepted.length);
  let inIdOrder = true;
  for (let position = 0; position < accepted.length; position++) {
    times[position] = timeOf(accepted[position]!.updatedAt);
    if (position > 0 && inIdOrder) inIdOrder = accepted[position - 1]!.id < accepted[position]!.id;
  }
  // Stores list by id: then a stable sort on the time alone keeps ids in order among equal times,
  // and the many ties (entries of one day) cost no string comparison.
  const positions = Array.from({ length: accepted.length }, (_, position) => position);
  positions.sort(
    inIdOrder
      ? (left, right) => times[right]! - times[left]!
      : (left, right) =>
          times[right]! - times[left]! ||
          (accepted[left]!.id < accepted[right]!.id ? -1 : accepted[left]!.id > accepted[right]!.id ? 1 : 0),
  );
  const order = positions.map((position) => accepted[position]!);
  const index: ListingIndex = {
    snapshot: [...entries],
    order,
    updated: new Float64Array(order.length),
    expires: new Float64Array(order.length),
    byRepo: new Map(),
    workspace: [],
  };
  for (let position = 0; position < order.length; position++) {
    const entry = order[position]!;
    index.updated[position] = times[positions[position]!]!;
    index.expires[position] = entry.expiresAt === undefined ? Infinity : timeOf(entry.expiresAt);
    if (entry.applies === "workspace") {
      index.workspace.push(position);
      continue;
    }
    for (const target of entry.applies) {
      const positions = index.byRepo.get(target.repo);
      if (!positions) index.byRepo.set(target.repo, [position]);
      else if (positions[positions.length - 1] !== position) positions.push(position);
    }
  }
  indexCache.set(entries, index);
  return index;
}

/** The positions an entry of the task's repos or the workspace holds, ascending and each once. */
function positionsFor(index: ListingIndex, repos: Iterable<string>): Int32Array | number[] {
  const lists = [index.workspace];
  for (const repo of repos) {
    const positions = index.byRepo.get(repo);
    if (positions) lists.push(positions);
  }
  if (lists.length === 1) return index.workspace;
  const all = new Int32Array(lists.reduce((sum, list) => sum + list.length, 0));
  let at = 0;
  for (const list of lists) for (const position of list) all[at++] = position;
  // A typed array sorts numerically; an entry naming two of the task's repos appears twice.
  all.sort();
  let kept = 0;
  for (let read = 0; read < all.length; read++) if (read === 0 || all[read] !== all[kept - 1]) all[kept++] = all[read]!;
  return all.subarray(0, kept);
}

/** Per scope repo: what the task sees, to tell whether an entry's path touches it. */
interface RepoView {
  /** Every scope file and each of its ancestor directories. */
  seen: Set<string> | undefined;
  /** Literal scope paths and the literal bases of globs. */
  roots: string[];
  inScope: (path: string) => boolean;
  /** Path → depth when it touches the scope, else -1. */
  depths: Map<string, number>;
}

/** Views per spec and scope object: both are values that do not change once made, and tasks select again. */
const viewCache = new WeakMap<TaskSpec, { scope: SelectMemoryOptions["scope"]; views: Map<string, RepoView> }>();

function repoViews(spec: TaskSpec, scope: SelectMemoryOptions["scope"]): Map<string, RepoView> {
  const cached = viewCache.get(spec);
  if (cached && cached.scope === scope) return cached.views;
  const views = buildRepoViews(spec, scope);
  viewCache.set(spec, { scope, views });
  return views;
}

function buildRepoViews(spec: TaskSpec, scope: SelectMemoryOptions["scope"]): Map<string, RepoView> {
  const views = new Map<string, RepoView>();
  for (const repo of spec.contextScope.repos) {
    const roots = repo.paths.map((path) => {
      // The literal directory a glob starts from: a path under it may hold files the glob matches.
      const wild = path.search(/[*?[\]{}()!+@]/);
      if (wild === -1) return path;
      const slash = path.lastIndexOf("/", wild);
      return slash <= 0 ? "." : path.slice(0, slash);
    });
    views.set(repo.name, {
      seen: scope ? new Set() : undefined,
      roots,
      inScope: createScopeMatcher(repo.paths, repo.exclude),
      depths: new Map(),
    });
  }
  for (const file of scope?.files ?? []) {
    const seen = views.get(file.repo)?.seen;
    if (!seen) continue;
    let path = file.path;
    while (!seen.has(path)) {
      seen.add(path);
      const slash = path.lastIndexOf("/");
      if (slash === -1) break;
      path = path.slice(0, slash);
    }
  }
  return views;
}

const SPECIFICITY: readonly MemorySpecificity[] = ["workspace", "workspace", "repo", "path"];
/** rank = level × 2048 + 1024 + narrowness, so rank >> 11 is the level. */
const rankOf = (level: number, narrowness: number) => level * 2048 + 1024 + narrowness;

/** Depth of a path when it touches what the task sees, else -1; paths repeat across entries, so each is worked out once per view. */
function touchDepth(view: RepoView, path: string): number {
  let depth = view.depths.get(path);
  if (depth !== undefined) return depth;
  // A file the agent sees lies under the path, or the path lies in (or contains) a scope path and is not excluded.
  let touches = view.seen?.has(path) === true;
  for (let index = 0; !touches && index < view.roots.length; index++) {
    const root = view.roots[index]!;
    touches = isPathWithin(root, path) || (isPathWithin(path, root) && view.inScope(path));
  }
  depth = -1;
  if (touches) {
    depth = path === "." ? 0 : 1;
    for (let index = 0; index < path.length; index++) if (path.charCodeAt(index) === 47) depth++;
  }
  view.depths.set(path, depth);
  return depth;
}

/** How an entry applies to the task as a rank (0 when it does not): path, then repo, then workspace. */
function classify(entry: MemoryEntry, names: readonly string[], list: readonly RepoView[]): number {
  const applies = entry.applies;
  if (applies === "workspace") return rankOf(1, 0);
  let best = 0;
  for (let index = 0; index < applies.length; index++) {
    const target = applies[index]!;
    // A task names a few repos: comparing names is cheaper than hashing each entry's (fresh) string for a map.
    let view: RepoView | undefined;
    for (let at = 0; at < names.length; at++) if (names[at] === target.repo) view = list[at];
    if (!view) continue;
    if (target.paths.length === 0) {
      best = Math.max(best, rankOf(2, -applies.length));
      continue;
    }
    for (const path of target.paths) {
      const depth = touchDepth(view, path);
      if (depth >= 0) best = Math.max(best, rankOf(3, depth));
    }
  }
  return best;
}

/**
 * Chooses the accepted, unexpired entries that apply to a task and fits them into the memory
 * share of its context budget: path-specific entries first (deeper paths before shallower), then
 * repo-wide, then workspace-wide; among equals the most recently updated, then the most used. The
 * share is `maxTokens`, or `share` × the context-read limit (`budgets.context_read`, else
 * `context_scope.max_tokens`, capped by `session_total`), cut to what the resolved scope leaves of
 * that limit. Entries are added in that order while the rendered section fits; once one does not
 * fit, entries of its standing may still fill the gap but nothing less specific is taken, so a
 * workspace-wide entry never displaces a path-specific one. What did not fit is listed by id. The same entries, spec, scope and clock always give the same selection.
 *
 * @example
 * const { entries, usage } = await store.list();
 * const selection = await selectMemory({ entries, usage, spec, scope, counter });
 * const section = renderMemorySection(selection); // into the task prompt
 */
export async function selectMemory(options: SelectMemoryOptions): Promise<MemorySelection> {
  const {
    entries,
    usage = {},
    spec,
    scope,
    counter = createByteEstimateCounter(),
    share = DEFAULT_MEMORY_SHARE,
    maxTokens,
    now = new Date(),
    abortSignal,
  } = validateOptions(optionsSchema, options, "options");
  throwIfAborted(abortSignal, "selectMemory");
  const limits = [spec.budgets.contextRead ?? spec.contextScope.maxTokens, spec.budgets.sessionTotal ?? Infinity];
  const contextRead = Math.min(...limits);
  let budget = maxTokens ?? Math.floor(contextRead * share);
  if (scope) budget = Math.max(0, Math.min(budget, contextRead - scope.totals.tokens));
  const at = now.getTime();
  if (Number.isNaN(at)) throw new InvalidArgumentError("options.now", "expected a valid Date");

  const views = repoViews(spec, scope);
  const names = [...views.keys()];
  const list = [...views.values()];
  const hasUsage = Object.keys(usage).length > 0;
  let candidates: Candidate[] = [];
  const candidate = (entry: MemoryEntry, rank: number, updated: number): Candidate => {
    const use = hasUsage ? usage[entry.id] : undefined;
    return {
      entry,
      specificity: SPECIFICITY[rank >> 11]!,
      level: rank >> 11,
      rank,
      updated,
      uses: use?.uses ?? 0,
      lastUsed: use?.lastUsedAt === undefined ? 0 : timeOf(use.lastUsedAt),
    };
  };
  const index = listingIndex(entries);
  if (index) {
    // A listing selected from before: only the entries of the task's repos and the workspace.
    for (const position of positionsFor(index, views.keys())) {
      if (index.expires[position]! <= at) continue;
      const entry = index.order[position]!;
      const rank = classify(entry, names, list);
      if (rank !== 0) candidates.push(candidate(entry, rank, index.updated[position]!));
    }
    candidates = rankOrder(candidates, true, hasUsage);
  } else {
    // The first selection over a listing (a dispatch lists once and selects once): one pass, no index to build.
    for (const entry of entries) {
      if (entry.status !== "accepted") continue;
      if (entry.expiresAt !== undefined && timeOf(entry.expiresAt) <= at) continue;
      const rank = classify(entry, names, list);
      if (rank !== 0) candidates.push(candidate(entry, rank, timeOf(entry.updatedAt)));
    }
    candidates = rankOrder(candidates, false, hasUsage);
  }

  // Keyed by the text itself, one map per counter: no key string to build and hash per block.
  let counted = countCache.get(counter.name);
  if (!counted) countCache.set(counter.name, (counted = new Map()));
  const byText = counted;
  const count = async (text: string): Promise<number> => {
    const cached = byText.get(text);
    if (cached !== undefined) return cached;
    const result = counter.count(text);
    const tokens = typeof result === "number" ? result : await result;
    if (byText.size >= COUNT_CACHE_LIMIT) byText.clear();
    byText.set(text, tokens);
    return tokens;
  };

  const headerTokens = await count(MEMORY_SECTION_HEADER);
  const selected: SelectedMemoryEntry[] = [];
  // The rendered text of each selected block, when this call rendered it: the whole section is joined from them, not rendered twice.
  const texts: (string | undefined)[] = [];
  const notFitted: string[] = [];
  let used = headerTokens;
  // Once an entry does not fit, nothing less specific is taken: a general rule never takes the
  // room a more specific one needed. Entries of the same standing may still fill the gap, but only
  // FILL_MISSES of them are tried: the rest are listed by id, never rendered or counted, so a
  // share that holds 400 of 1,500 applicable entries costs about 400 counts, not 1,500.
  let floor = 0;
  let misses = 0;
  let position = 0;
  for (; position < candidates.length && misses < FILL_MISSES; position++) {
    if (position % 1024 === 1023) throwIfAborted(abortSignal, "selectMemory");
    const candidate = candidates[position]!;
    if (candidate.level < floor) {
      notFitted.push(candidate.entry.id);
      continue;
    }
    let counts = blockCache.get(candidate.entry);
    // A count is reused for the same entry object, counter and standing, while its update time is unchanged (edits bump it).
    const known = counts?.find(
      (item) => item.counter === counter.name && item.specificity === candidate.specificity && item.updatedAt === candidate.entry.updatedAt,
    );
    let tokens: number;
    let text: string | undefined;
    if (known !== undefined) tokens = known.tokens;
    else {
      text = renderMemoryBlock(candidate.entry, candidate.specificity);
      tokens = await count(text);
      // Kept by entry object only for a listing selected from again: the first selection over a
      // fresh listing (one dispatch) would pay a weak-map insert per block for nothing; counts
      // by text still carry over to it from earlier listings.
      if (index) {
        if (!counts) blockCache.set(candidate.entry, (counts = []));
        if (counts.length >= 8) counts.shift();
        counts.push({ counter: counter.name, specificity: candidate.specificity, updatedAt: candidate.entry.updatedAt, tokens });
      }
    }
    if (used + tokens <= budget) {
      selected.push({ entry: candidate.entry, tokens, specificity: candidate.specificity });
      texts.push(text);
      used += tokens;
    } else {
      notFitted.push(candidate.entry.id);
      floor = Math.max(floor, candidate.level);
      misses++;
    }
  }
  for (; position < candidates.length; position++) notFitted.push(candidates[position]!.entry.id);

  // Counted as parts; a tokenizer may count the whole differently, so the whole is what must fit.
  let tokens = selected.length === 0 ? 0 : await countSection(selected, texts, counter.name, count);
  let popped = false;
  while (tokens > budget && selected.length > 0) {
    notFitted.push(selected.pop()!.entry.id);
    texts.pop();
    popped = true;
    tokens = selected.length === 0 ? 0 : await countSection(selected, texts, counter.name, count);
  }
  if (popped) {
    const rank = new Map(candidates.map((candidate, position) => [candidate.entry.id, position]));
    notFitted.sort((left, right) => rank.get(left)! - rank.get(right)!);
  }
  return {
    selected,
    notFitted,
    tokens,
    budget,
    contextRead,
    ...(scope ? { scopeTokens: scope.totals.tokens } : {}),
    applicable: candidates.length,
    counter: counter.name,
    estimated: counter.estimated,
  };
}

/** The last whole-section count per first entry: the same entry objects in the same order render the same text. */
const sectionCache = new WeakMap<MemoryEntry, Map<string, { selected: SelectedMemoryEntry[]; tokens: number }>>();

async function countSection(
  selected: readonly SelectedMemoryEntry[],
  texts: readonly (string | undefined)[],
  counterName: string,
  count: (text: string) => Promise<number>,
): Promise<number> {
  const first = selected[0]!.entry;
  let byCounter = sectionCache.get(first);
  const known = byCounter?.get(counterName);
  if (
    known !== undefined &&
    known.selected.length === selected.length &&
    known.selected.every(
      (item, index) =>
        item.entry === selected[index]!.entry &&
        item.specificity === selected[index]!.specificity &&
        item.tokens === selected[index]!.tokens,
    )
  )
    return known.tokens;
  // The text renderMemorySection gives, from the blocks the fitting loop rendered.
  const tokens = await count(memorySectionText(selected, texts));
  if (!byCounter) sectionCache.set(first, (byCounter = new Map()));
  byCounter.set(counterName, { selected: [...selected], tokens });
  return tokens;
}

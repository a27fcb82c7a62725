import { createHash } from "node:crypto";
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readSync, statSync, type Stats } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { isAbsolute, join, relative, sep } from "node:path";
import type { Ignore, Options as IgnoreOptions } from "ignore";
import { throwIfAborted } from "./aborted-error.js";
import { InvalidArgumentError } from "./invalid-argument-error.js";
import { resolvePathInside } from "./resolve-path-inside.js";
import { isPathWithin, normalizeRepoPath } from "./repo-path.js";
import type { RefusedPath, ResolvedScope, ResolveScopeOptions, ScopeFile, ScopeLink, SkippedFile } from "./resolve-scope.js";
import { createScopeCache, type CachedListing, type ScopeCache } from "./scope-cache.js";
import {
  directoryFingerprint,
  dropSnapshot,
  getSnapshot,
  identityOf,
  replaySnapshot,
  sameIdentity,
  setSnapshot,
  type Identity,
  type WalkSnapshot,
} from "./scope-snapshot.js";
import { ScopeLimitError, type ScopeHotspot, type ScopeViolation } from "./scope-limit-error.js";
import { compileEntries, createScopeMatcher, globBase, isGlob, touchesGitDirectory } from "./scope-matcher.js";
import type { ScopeRepo, TaskSpec } from "./task-spec.js";
import { createByteEstimateCounter, ESTIMATE_BYTES_PER_TOKEN, type TokenCounter } from "./token-counter.js";

// The engine of resolveScope (resolve-scope.ts validates the options and calls it). It imports
// neither zod nor yaml: `@bulkhead/core/scope` loads it alone, for the command line's start-up.

let sharedCache: ScopeCache | undefined;
const BINARY_SNIFF_BYTES = 8000;
/**
 * A file or directory whose mtime or ctime is this close to the moment it was read may change
 * again without its timestamps moving (coarse file system clocks): such an entry is not persisted.
 */
const RACY_MS = 2_000;
const require = createRequire(import.meta.url);
// Loaded when a directory is first listed without a cached answer: a warm resolve never needs it.
let ignoreFactory: ((options?: IgnoreOptions) => Ignore) | undefined;

interface Candidate {
  repo: string;
  root: string;
  path: string;
  /** Named in `paths` (it may be a link the spec author asked for); walked files are opened without following a link. */
  follow: boolean;
}

/** The `.gitignore` texts that apply inside a directory, from the root down, and a key naming them. */
interface RuleChain {
  key: string;
  texts: readonly { dir: string; text: string }[];
}

/** Walks one repo and collects the files its scope entries expand to. */
class RepoWalker {
  readonly candidates: Candidate[] = [];
  /**
   * Paths added, when two entries of `paths` could reach one file. With one entry they cannot
   * (each directory is walked once, its names are unique), and 100k inserts are saved.
   */
  readonly #added: Set<string> | undefined;
  readonly refused: RefusedPath[] = [];
  readonly skipped: SkippedFile[] = [];
  readonly notFound: string[] = [];
  /** Directory symlinks followed inside the repo: link path → target path. */
  readonly links = new Map<string, string>();
  readonly reportedLinks: ScopeLink[] = [];
  /** Every directory listed and rule file read, for a {@link WalkSnapshot}. */
  readonly listed: [path: string, fingerprint: string][] = [];
  readonly ruleFiles: [path: string, identity: Identity | undefined][] = [];
  readonly linksSeen: WalkSnapshot["links"][number][] = [];
  readonly brokenSeen: WalkSnapshot["broken"][number][] = [];
  /** False once the walk met something a snapshot cannot replay (a directory that would not stat, an odd rule file). */
  snapshotable = true;
  readonly #chains = new Map<string, RuleChain>();
  /** Every directory walked, by device and inode: a directory is walked once, whatever the links. */
  readonly #visited = new Set<string>();
  #walked = 0;
  readonly #excluded: (path: string) => boolean;
  readonly #noExcludes: boolean;

  constructor(
    readonly repo: ScopeRepo,
    readonly root: string,
    readonly gitignore: boolean,
    readonly signal: AbortSignal | undefined,
    readonly cache: ScopeCache | undefined,
    readonly startedAt: number,
  ) {
    this.#excluded = compileEntries(repo.exclude);
    this.#noExcludes = repo.exclude.length === 0;
    this.#added = repo.paths.length > 1 ? new Set() : undefined;
  }

  /** Resolves a spec path component by component: a link in it that leaves the repo is refused. */
  #inside(path: string, first: "refuse" | "inside" = "refuse", reportAs = path): { real: string; info: Stats | undefined } | undefined {
    const resolved = resolvePathInside(this.root, path, { links: first });
    if (resolved.ok && first === "refuse") return { real: resolved.real, info: resolved.stats };
    const followed = resolvePathInside(this.root, path, { links: "inside" });
    if (!followed.ok) {
      this.refused.push({ repo: this.repo.name, path: reportAs, reason: followed.reason });
      return undefined;
    }
    if (touchesGitDirectory(followed.real)) {
      this.refused.push({ repo: this.repo.name, path: reportAs, reason: "goes through a symbolic link into .git" });
      return undefined;
    }
    // A link in the prefix that stays inside: the path is read where it really is.
    const info = followed.stats && (statSync(followed.absolute, { throwIfNoEntry: false }) ?? followed.stats);
    return { real: followed.real, info };
  }

  async addEntry(entry: string): Promise<void> {
    if (isGlob(entry)) {
      const before = this.candidates.length;
      const base = globBase(entry);
      // The glob is walked under its base, so a link there is followed: it must stay inside.
      const found = this.#inside(base, "inside", entry);
      if (!found) return;
      if (found.info?.isDirectory()) await this.walk(base, compileEntries([entry]), join(this.root, found.real));
      if (this.candidates.length === before) this.notFound.push(entry);
      return;
    }
    const found = this.#inside(entry);
    if (!found) return;
    const info = found.info;
    if (!info) return void this.notFound.push(entry);
    if (found.real !== entry) {
      if (this.#excluded(entry) || this.#excluded(found.real)) return;
      if (info.isDirectory()) await this.walk(entry, undefined, join(this.root, found.real));
      else this.add(entry, true);
      return;
    }
    if (this.#excluded(entry) || touchesGitDirectory(entry)) return;
    const target = info.isSymbolicLink() ? await this.follow(entry) : { path: entry, isDirectory: info.isDirectory() };
    if (!target) return;
    // A path named explicitly is included even when git ignores it: the spec author asked for it.
    if (target.isDirectory) await this.walk(entry, undefined, join(this.root, target.path));
    else this.add(entry, true);
  }

  /** Resolves a symlink; records a refusal or a broken link and returns undefined when it cannot be followed. */
  async follow(path: string): Promise<{ path: string; real: string; isDirectory: boolean } | undefined> {
    const absolute = join(this.root, path);
    let real: string;
    try {
      real = await realpath(absolute);
    } catch {
      const skip: SkippedFile = { repo: this.repo.name, path, reason: "broken-symlink" };
      this.skipped.push(skip);
      const info = lstatSync(absolute, { throwIfNoEntry: false });
      if (info?.isSymbolicLink()) this.brokenSeen.push([absolute, identityOf(info), skip]);
      return undefined;
    }
    const inside = relative(this.root, real);
    if (inside.startsWith("..") || isAbsolute(inside)) {
      this.refused.push({ repo: this.repo.name, path, reason: `symlink points outside the repo (to ${real})` });
      return undefined;
    }
    const targetPath = inside === "" ? "." : inside.split(sep).join("/");
    if (touchesGitDirectory(targetPath)) {
      this.refused.push({ repo: this.repo.name, path, reason: "symlink points into .git" });
      return undefined;
    }
    const info = await stat(real);
    if (info.isDirectory()) this.links.set(path, targetPath);
    return { path: targetPath, real, isDirectory: info.isDirectory() };
  }

  add(path: string, follow = false, throughLink = true): void {
    // A file reached through a directory symlink is excluded when its real path is.
    if (
      throughLink &&
      this.links.size > 0 &&
      resolveLinks(this.links, path).some((alias) => this.#excluded(alias) || touchesGitDirectory(alias))
    )
      return;
    if (this.#added?.has(path)) return;
    this.#added?.add(path);
    this.candidates.push({ repo: this.repo.name, root: this.root, path, follow });
  }

  /**
   * Walks a directory depth-first. Listing is synchronous (much faster than the promise API for
   * many small directories); the loop yields to the event loop every few directories so an
   * abort is noticed. `real` is the directory's real path. Each directory is walked once, known
   * by device and inode, so a link loop (`loop -> ..`) or two links to one place add nothing twice.
   */
  async walk(
    directory: string,
    match: ((path: string) => boolean) | undefined,
    real = directory === "." ? this.root : join(this.root, directory),
  ): Promise<void> {
    const info = statSync(real, { throwIfNoEntry: false });
    const key = info ? `${info.dev}:${info.ino}` : real;
    if (this.#visited.has(key)) return;
    this.#visited.add(key);
    await this.#list(directory, match, real, info);
  }

  async #list(directory: string, match: ((path: string) => boolean) | undefined, real: string, info: Stats | undefined): Promise<void> {
    if (++this.#walked % 64 === 0) await new Promise((resolve) => setImmediate(resolve));
    throwIfAborted(this.signal, "resolveScope");
    const entries = this.#entries(directory, real, info);
    // Reached through a link named in `paths` (its logical path is not where it is): only then can
    // a file's path pass through a directory link, so only then are the links checked per file.
    const throughLink = real !== (directory === "." ? this.root : `${this.root}/${directory}`);
    for (const [name, kind] of entries) {
      const path = directory === "." ? name : `${directory}/${name}`;
      if (!this.#noExcludes && this.#excluded(path)) continue;
      if (kind === "l") {
        // git stores a link as a link: the scope reports it and never reads or walks through it,
        // so a file reached by two paths (`.claude/skills -> ../skills`) is counted once.
        if (match && !match(path) && !(await isDirectoryTarget(join(this.root, path)))) continue;
        const target = await this.follow(path);
        if (target) {
          const link: ScopeLink = {
            repo: this.repo.name,
            path,
            target: target.path,
            kind: target.isDirectory ? "directory" : "file",
            walked: false,
          };
          this.reportedLinks.push(link);
          const absolute = join(this.root, path);
          const info = lstatSync(absolute, { throwIfNoEntry: false });
          if (info?.isSymbolicLink()) this.linksSeen.push([absolute, identityOf(info), target.real, target.isDirectory, link]);
          else this.snapshotable = false;
        }
      } else if (kind === "d") await this.walk(path, match, `${real}/${name}`);
      else if (!match || match(path)) this.add(path, false, throughLink);
    }
  }

  /**
   * A directory's entries after `.gitignore`, sorted (so which path a directory is walked by never
   * depends on the file system's order). While the directory's identity and mtime and the rules
   * from the root down are what the cache saw, its answer is used: no listing, no rule evaluated.
   */
  #entries(directory: string, real: string, info: Stats | undefined): CachedListing["entries"] {
    const key = `${this.root}\u0000${directory}`;
    const fingerprint = info ? directoryFingerprint(info) : "";
    if (info) this.listed.push([real, fingerprint]);
    else this.snapshotable = false;
    const cached = info ? this.cache?.getListing(key) : undefined;
    if (cached && cached.fingerprint === fingerprint && cached.rules === this.#chain(directory, cached.hasGitignore).key)
      return cached.entries;

    const listed = readdirSync(real, { withFileTypes: true }).sort((left, right) =>
      left.name < right.name ? -1 : left.name > right.name ? 1 : 0,
    );
    const hasGitignore = listed.some((entry) => entry.name === ".gitignore");
    const chain = this.#chain(directory, hasGitignore);
    const rules = chain.texts.map(({ dir, text }) => ({ dir, rules: compiledRules(text) }));
    const entries: [string, "f" | "d" | "l"][] = [];
    for (const entry of listed) {
      if (entry.name === ".git") continue;
      const kind = entry.isSymbolicLink() ? "l" : entry.isDirectory() ? "d" : entry.isFile() ? "f" : undefined;
      if (kind === undefined) continue;
      const path = directory === "." ? entry.name : `${directory}/${entry.name}`;
      if (rules.length > 0 && (isIgnored(rules, path, kind === "d") || (kind === "l" && isIgnored(rules, path, true)))) continue;
      entries.push([entry.name, kind]);
    }
    if (info) {
      const settled = Math.max(info.mtimeMs, info.ctimeMs) < this.startedAt - RACY_MS;
      this.cache?.setListing(key, { fingerprint, rules: chain.key, hasGitignore, entries, settled });
    }
    return entries;
  }

  /**
   * The `.gitignore` texts that apply inside a directory, from the root down. `hasGitignore` says
   * whether the directory holds one, when its listing is known; otherwise the file is tried.
   */
  #chain(directory: string, hasGitignore?: boolean): RuleChain {
    if (!this.gitignore) return NO_RULES;
    let chain = this.#chains.get(directory);
    if (chain) return chain;
    const parent =
      directory === "." ? GIT_RULES : this.#chain(directory.includes("/") ? directory.slice(0, directory.lastIndexOf("/")) : ".");
    let text = hasGitignore === false ? "" : this.#readRules(join(this.root, directory, ".gitignore"));
    if (directory === ".") text = `${text}\n${this.#readRules(join(this.root, ".git", "info", "exclude"))}`;
    chain =
      text.trim() === ""
        ? parent
        : {
            key: createHash("sha1").update(`${parent.key}\u0000${directory}\u0000${text}`).digest("base64"),
            texts: [...parent.texts, { dir: directory, text }],
          };
    this.#chains.set(directory, chain);
    return chain;
  }

  /** A rule file's text ({@link readSmallText}), its identity noted for a snapshot. */
  #readRules(path: string): string {
    const read = readSmallText(path);
    if (read.identity || read.missing) this.ruleFiles.push([path, read.identity]);
    else this.snapshotable = false;
    return read.text;
  }
}

const NO_RULES: RuleChain = { key: "off", texts: [] };
const GIT_RULES: RuleChain = { key: "git", texts: [] };

/**
 * A small text file's content, or "" when it is missing, not a regular file, or a link (git
 * ignores a linked .gitignore); with the identity of the file read, or `missing` when there is none.
 */
function readSmallText(path: string): { text: string; identity: Identity | undefined; missing: boolean } {
  try {
    const { info, buffer } = readWithStats(path, 1 << 20, false);
    return { text: buffer?.toString("utf8") ?? "", identity: identityOf(info), missing: false };
  } catch (error) {
    // Missing (ENOENT), a link (ELOOP: opened without following) or not a regular file (EFTYPE).
    return { text: "", identity: undefined, missing: (error as { code?: string }).code === "ENOENT" };
  }
}

/** One `.gitignore`'s verdict on one path: matched by a rule, or by a negated (`!`) rule. */
interface RuleVerdict {
  ignored: boolean;
  unignored: boolean;
}

/** A `.gitignore`'s rules, compiled: the verdict of its own rules on a path relative to it. */
type CompiledRules = (path: string) => RuleVerdict;

/**
 * Compiled `.gitignore` rules by their text, kept across resolves. Verdicts depend only on the
 * rules' text and the path relative to the file, so sharing one between directories or repos
 * with the same text is exact. Bounded: oldest out.
 */
const compiled = new Map<string, CompiledRules>();
const COMPILED_RULES_MAX = 2_000;

function compiledRules(text: string): CompiledRules {
  let rules = compiled.get(text);
  if (!rules) {
    ignoreFactory ??= require("ignore") as (options?: IgnoreOptions) => Ignore;
    const set = ignoreFactory().add(text);
    // ignore's public test() also judges each of the path's parents and keeps every path it was
    // asked about in an object that only grows. The walk never lists a directory git would not
    // enter, so a path is judged by its own rules alone, the way git judges each level (and a
    // directory a deeper .gitignore re-includes has its files judged as git does, not as its
    // excluded parent). ignore 7 exposes that one-path test as its rule list's test(); with
    // another ignore the public test() is used.
    const list = (set as unknown as { _rules?: { test?: (path: string, mode: string) => RuleVerdict } })._rules;
    const own = list?.test;
    rules = typeof own === "function" ? (path) => own.call(list, path, "regex") : (path) => set.test(path);
    compiled.set(text, rules);
    if (compiled.size > COMPILED_RULES_MAX) compiled.delete(compiled.keys().next().value!);
  }
  return rules;
}

async function isDirectoryTarget(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

function isIgnored(rules: readonly { dir: string; rules: CompiledRules }[], path: string, isDirectory: boolean): boolean {
  let ignored = false;
  for (const { dir, rules: verdict } of rules) {
    const local = dir === "." ? path : path.slice(dir.length + 1);
    const result = verdict(isDirectory ? `${local}/` : local);
    if (result.ignored) ignored = true;
    else if (result.unignored) ignored = false;
  }
  return ignored;
}

function isBinary(buffer: Buffer): boolean {
  return buffer.subarray(0, BINARY_SNIFF_BYTES).includes(0);
}

/**
 * {@link resolveScope} on options already validated (the CLI builds them itself): the whole of
 * scope resolution without zod or yaml, so a warm command-line run starts fast.
 *
 * Exported from `@bulkhead/core/scope` only (for the command line), not the main entry.
 */
export async function resolveValidatedScope(spec: TaskSpec, options: ResolveScopeOptions): Promise<ResolvedScope> {
  const {
    repos,
    counter: given,
    abortSignal,
    cache = (sharedCache ??= createScopeCache()),
    maxFileBytes = 1_048_576,
    gitignore = true,
    stopAtLimit = false,
  } = options;
  if (!spec?.contextScope?.repos) throw new InvalidArgumentError("spec", "expected a TaskSpec from parseTaskSpec or loadTaskSpec");
  throwIfAborted(abortSignal, "resolveScope");
  const counter = given ?? createByteEstimateCounter();
  const startedAt = Date.now();

  const roots = new Map<string, string>();
  for (const repo of [...spec.contextScope.repos.map((entry) => entry.name)]) {
    const directory = repos[repo];
    if (directory === undefined) {
      throw new InvalidArgumentError("options.repos", `no directory for repo "${repo}": pass repos: { "${repo}": "<dir>" }`);
    }
    const root = await realpath(directory).catch(() => undefined);
    if (!root || !(await isDirectoryTarget(root))) {
      throw new InvalidArgumentError("options.repos", `repo "${repo}" maps to ${directory}, which is not a directory`);
    }
    roots.set(repo, root);
  }

  // The estimate made here counts the file's bytes: no text to decode, no hash to take.
  const bytesOnly = given === undefined;
  // A repo resolved before with this cache, these entries and this counter is replayed from its
  // snapshot when nothing it depended on changed: one stat per directory, one lstat per file.
  const snapshotKey = (repo: ScopeRepo) =>
    JSON.stringify([roots.get(repo.name), repo.name, repo.paths, repo.exclude, gitignore, maxFileBytes, counter.name, bytesOnly]);
  const replayed: { files: ScopeFile[]; skipped: SkippedFile[] }[] = [];
  const walkers = await Promise.all(
    spec.contextScope.repos.map(async (repo) => {
      const walker = new RepoWalker(repo, roots.get(repo.name)!, gitignore, abortSignal, cache || undefined, startedAt);
      const key = snapshotKey(repo);
      const snapshot = cache ? getSnapshot(cache, key) : undefined;
      const replay = snapshot && replaySnapshot(snapshot);
      if (replay) {
        replayed.push(replay);
        walker.snapshotable = false;
        walker.reportedLinks.push(...replay.links);
        for (const [path, target] of replay.linkMap) walker.links.set(path, target);
        return walker;
      }
      if (cache && snapshot) dropSnapshot(cache, key);
      for (const entry of repo.paths) await walker.addEntry(entry);
      return walker;
    }),
  );
  throwIfAborted(abortSignal, "resolveScope");

  const candidates = walkers.flatMap((walker) => walker.candidates);
  const skipped = walkers.flatMap((walker) => walker.skipped);
  const { maxFiles, maxTokens } = spec.contextScope;
  const trace = cache && candidates.length > 0 ? new Map<string, WalkSnapshot["files"][number][]>() : undefined;
  const spoiled = new Set<string>();
  const measured = await measureAll(candidates, {
    counter,
    bytesOnly,
    cache: cache || undefined,
    maxFileBytes,
    skipped,
    abortSignal,
    limits: stopAtLimit ? { maxFiles, maxTokens } : undefined,
    startedAt,
    trace,
    spoiled,
    identity: undefined,
    absolute: "",
  });
  if (cache) await cache.save();
  if (cache && trace && measured.stopped === undefined) {
    for (const walker of walkers) {
      const name = walker.repo.name;
      // Links only as reported in a walk (git's way), each noted with its identity and target.
      const plain =
        walker.refused.length === 0 &&
        walker.notFound.length === 0 &&
        walker.skipped.length === walker.brokenSeen.length &&
        walker.reportedLinks.length === walker.linksSeen.length;
      if (!walker.snapshotable || !plain || spoiled.has(name)) continue;
      const entries = (trace.get(name) ?? []).map(
        ([absolute, identity, result, isSkipped]) => [absolute, identity, { ...result }, isSkipped] as const,
      );
      setSnapshot(cache, snapshotKey(walker.repo), {
        directories: walker.listed,
        ruleFiles: walker.ruleFiles,
        links: walker.linksSeen.map(([absolute, identity, real, isDirectory, link]) => [
          absolute,
          identity,
          real,
          isDirectory,
          { ...link },
        ]),
        linkMap: [...walker.links],
        broken: walker.brokenSeen.map(([absolute, identity, skip]) => [absolute, identity, { ...skip }]),
        files: entries,
      });
    }
  }
  for (const replay of replayed) {
    for (const file of replay.files) measured.files.push(file);
    for (const entry of replay.skipped) skipped.push(entry);
  }
  const files = measured.files.sort(compareFiles);
  const complete = measured.stopped === undefined;

  const totals = { files: files.length, bytes: 0, tokens: 0 };
  let exactTokens = 0;
  for (const file of files) {
    totals.bytes += file.bytes;
    totals.tokens += file.tokens;
    if (!file.estimated) exactTokens += file.tokens;
  }

  const violations: ScopeViolation[] = [];
  const count = (value: number) => value.toLocaleString("en-US");
  const stoppedNote = complete ? "" : `; counting stopped at the limit, ${count(measured.read)} of about ${count(totals.files)} files read`;
  if (totals.files > maxFiles && (complete || measured.stopped === "max-files")) {
    violations.push({
      kind: "max-files",
      limit: maxFiles,
      actual: totals.files,
      ...(complete ? {} : { counted: measured.read }),
      message: `scope resolves to ${complete ? "" : "about "}${count(totals.files)} files, over max_files ${count(maxFiles)}${stoppedNote}: narrow paths or raise the limit`,
    });
  }
  // Over the tokens limit only when certain: the exactly counted part alone exceeds it.
  if (exactTokens > maxTokens || (complete && totals.tokens > maxTokens)) {
    violations.push({
      kind: "max-tokens",
      limit: maxTokens,
      actual: totals.tokens,
      ...(complete ? {} : { counted: exactTokens }),
      message: complete
        ? `scope holds ${count(totals.tokens)} tokens, over max_tokens ${count(maxTokens)}: narrow paths, add excludes or raise the limit`
        : `scope holds more than ${count(exactTokens)} tokens (about ${count(totals.tokens)} in all), over max_tokens ${count(maxTokens)}${stoppedNote}: narrow paths, add excludes or raise the limit`,
    });
  }
  const toCreate: ResolvedScope["toCreate"] = [];
  const declared = new Set(spec.expectedFiles.filter((file) => file.change === "create").map((file) => `${file.repo}\0${file.path}`));
  for (const walker of walkers) {
    for (const path of walker.notFound) {
      if (willCreate(walker.root, walker.repo.name, path, declared)) {
        toCreate.push({ repo: walker.repo.name, path });
        continue;
      }
      violations.push({
        kind: "path-not-found",
        repo: walker.repo.name,
        path,
        message: `path "${path}" in repo "${walker.repo.name}" ${isGlob(path) ? "matches no file" : "does not exist"}: fix or remove it`,
      });
    }
  }

  const largest = (limit = 5) => hotspots(files, limit);
  const permissions = createPermissions(spec, walkers);
  return {
    files,
    totals,
    estimated: counter.estimated,
    complete,
    counter: counter.name,
    violations,
    toCreate: toCreate.sort(compareFiles),
    skipped: skipped.sort(compareFiles),
    refused: walkers.flatMap((walker) => walker.refused).sort(compareFiles),
    links: walkers.flatMap((walker) => walker.reportedLinks).sort(compareFiles),
    largest,
    assertWithinLimits() {
      if (violations.length === 0) return;
      const { directories, files: heaviest } = hotspots(files, 5, { advice: true });
      throw new ScopeLimitError(violations, directories, heaviest, { estimated: !complete });
    },
    canRead: (repo, path) => permissions.canRead(repo, path),
    canWrite: (repo, path) => permissions.canWrite(repo, path),
  };
}

function compareFiles(left: { repo: string; path: string }, right: { repo: string; path: string }): number {
  if (left.repo !== right.repo) return left.repo < right.repo ? -1 : 1;
  return left.path < right.path ? -1 : left.path > right.path ? 1 : 0;
}

const OPEN_WALKED = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const OPEN_NAMED = constants.O_RDONLY | constants.O_NONBLOCK;

/**
 * Reads a file with one open, fstat, read and close: one read for a file of any size up to
 * `maxBytes` (the buffer is sized from fstat). A file over `maxBytes` is not read. A walked file
 * is opened without following a link (it was a file when listed; a link now is not read), and
 * never blocks (a FIFO put in its place opens and reads nothing).
 */
function readWithStats(path: string, maxBytes: number, follow: boolean): { info: Stats; buffer: Buffer | undefined } {
  const descriptor = openSync(path, follow ? OPEN_NAMED : OPEN_WALKED);
  try {
    const info = fstatSync(descriptor);
    if (!info.isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: "EFTYPE" });
    if (info.size > maxBytes) return { info, buffer: undefined };
    const buffer = Buffer.allocUnsafe(info.size);
    let offset = 0;
    while (offset < info.size) {
      const read = readSync(descriptor, buffer, offset, info.size - offset, offset);
      if (read === 0) break;
      offset += read;
    }
    return { info, buffer: offset === info.size ? buffer : buffer.subarray(0, offset) };
  } finally {
    closeSync(descriptor);
  }
}

interface MeasureContext {
  counter: TokenCounter;
  /** Count `ceil(bytes / 4)` from the file's size (the default estimate): no decoding, no hashing. */
  bytesOnly: boolean;
  cache: ScopeCache | undefined;
  maxFileBytes: number;
  skipped: SkippedFile[];
  abortSignal: AbortSignal | undefined;
  /** With `stopAtLimit`: stop once the files read certainly exceed one of these. */
  limits: { maxFiles: number; maxTokens: number } | undefined;
  startedAt: number;
  /** Per repo, each candidate's absolute path, identity and result, for a {@link WalkSnapshot}; undefined with no cache. */
  trace: Map<string, WalkSnapshot["files"][number][]> | undefined;
  /** Repos whose trace cannot be replayed (an unreadable file, a link named in `paths`). */
  spoiled: Set<string>;
  /** The identity readCandidate last judged a file by, and its absolute path (the content cache's key, shared). */
  identity: Identity | undefined;
  absolute: string;
}

/** Bytes sent to `countMany` at once, and batches in flight before reading waits for one. */
const BATCH_BYTES = 1 << 20;
const BATCHES_IN_FLIGHT = 8;

const estimateOf = (bytes: number) => Math.ceil(bytes / ESTIMATE_BYTES_PER_TOKEN);

/**
 * Measures every candidate: a file seen before with an unchanged fingerprint costs one `lstat`;
 * any other is read once (open, fstat, read, close) and hashed. Texts whose count is not cached
 * are counted inline, or, when the counter has `countMany`, in batches that run (on the
 * counter's threads) while this thread goes on reading. With limits, it stops reading once the
 * files read certainly exceed one; the rest are listed from their sizes.
 */
async function measureAll(
  candidates: readonly Candidate[],
  context: MeasureContext,
): Promise<{ files: ScopeFile[]; read: number; stopped: "max-files" | "max-tokens" | undefined }> {
  const { counter, cache, abortSignal, limits } = context;
  const files: ScopeFile[] = [];
  const inFlight: Promise<void>[] = [];
  // Texts go to the counter as the bytes read: a thread that counts them decodes them there.
  let batch: { file: ScopeFile; hash: string; bytes: Buffer }[] = [];
  let batchBytes = 0;
  /** Tokens known exactly so far, and bytes sent or about to be sent for counting. */
  let counted = 0;
  let pendingBytes = 0;
  /** Bytes counted and the tokens they held: the scope's own tokens per byte, to predict the limit. */
  let countedBytes = 0;
  let byteTokens = 0;
  const predicted = (bytes: number) => (countedBytes > 0 ? Math.ceil((bytes * byteTokens) / countedBytes) : estimateOf(bytes));
  let stopped: "max-files" | "max-tokens" | undefined;
  const tally = (tokens: number) => {
    counted += tokens;
    if (limits && counted > limits.maxTokens) stopped ??= "max-tokens";
  };
  const flush = async () => {
    if (batch.length === 0) return;
    const sent = batch;
    const sentBytes = batchBytes;
    batch = [];
    batchBytes = 0;
    const options = abortSignal ? { abortSignal } : undefined;
    const counting = (
      counter.countManyBytes
        ? counter.countManyBytes(
            sent.map((entry) => entry.bytes),
            options,
          )
        : counter.countMany!(
            sent.map((entry) => entry.bytes.toString("utf8")),
            options,
          )
    ).then((counts) => {
      pendingBytes -= sentBytes;
      countedBytes += sentBytes;
      sent.forEach((entry, index) => {
        entry.file.tokens = counts[index]!;
        byteTokens += entry.file.tokens;
        cache?.setTokens(counter.name, entry.hash, entry.file.tokens);
        tally(entry.file.tokens);
      });
    });
    inFlight.push(counting);
    if (inFlight.length >= BATCHES_IN_FLIGHT) await inFlight.shift();
  };
  const drain = async () => {
    await flush();
    while (inFlight.length > 0) await inFlight.shift();
  };
  let index = 0;
  for (; index < candidates.length && stopped === undefined; index++) {
    // Files are read synchronously; yield now and then so timers and aborts get a turn.
    if (index % 256 === 255) await new Promise((resolve) => setImmediate(resolve));
    throwIfAborted(abortSignal, "resolveScope");
    const candidate = candidates[index]!;
    context.identity = undefined;
    const read = readCandidate(candidate, context);
    if (context.trace) {
      const identity = context.identity;
      if (identity === undefined || candidate.follow) context.spoiled.add(candidate.repo);
      else {
        let entries = context.trace.get(candidate.repo);
        if (!entries) context.trace.set(candidate.repo, (entries = []));
        entries.push([context.absolute, identity, read ? read.file : context.skipped[context.skipped.length - 1]!, !read]);
      }
    }
    if (!read) continue;
    files.push(read.file);
    if (limits && files.length > limits.maxFiles) stopped = "max-files";
    if (read.bytes === undefined) {
      tally(read.file.tokens);
      continue;
    }
    if (counter.countMany || counter.countManyBytes) {
      batch.push({ file: read.file, hash: read.hash!, bytes: read.bytes });
      batchBytes += read.bytes.length;
      pendingBytes += read.bytes.length;
      if (batchBytes >= BATCH_BYTES) await flush();
      // Near the limit by the prediction (the tokens per character counted so far, bytes/4 before
      // any): wait for the exact counts before reading on, so a refusal never counts far past its
      // limit, and a scope just under it is not counted one file at a time for long.
      if (limits && stopped === undefined && counted + predicted(pendingBytes) > limits.maxTokens) await drain();
      continue;
    }
    const tokens = counter.count(read.bytes.toString("utf8"));
    read.file.tokens = typeof tokens === "number" ? tokens : await tokens;
    cache?.setTokens(counter.name, read.hash!, read.file.tokens);
    tally(read.file.tokens);
  }
  await drain();
  const readCount = files.length;
  // Stopped at a limit: the rest are listed from one lstat each, their tokens estimated from size.
  for (; index < candidates.length; index++) {
    if (index % 1024 === 1023) await new Promise((resolve) => setImmediate(resolve));
    const estimated = estimateCandidate(candidates[index]!, context);
    if (estimated) files.push(estimated);
  }
  return { files, read: readCount, stopped };
}

/** A candidate not read (counting stopped at a limit): its size, and a cached count or an estimate. */
function estimateCandidate(candidate: Candidate, context: MeasureContext): ScopeFile | undefined {
  const { repo, root, path, follow } = candidate;
  const absolute = `${root}/${path}`;
  const info = (follow ? statSync : lstatSync)(absolute, { throwIfNoEntry: false });
  if (!info?.isFile()) {
    context.skipped.push({ repo, path, reason: "unreadable" });
    return undefined;
  }
  if (info.size > context.maxFileBytes) {
    context.skipped.push({ repo, path, reason: "too-large" });
    return undefined;
  }
  const content = context.cache?.getContent(absolute);
  if (content && sameIdentity(info, content.identity)) {
    if (content.binary) {
      context.skipped.push({ repo, path, reason: "binary" });
      return undefined;
    }
    const tokens = context.bytesOnly
      ? estimateOf(content.bytes)
      : content.hash === undefined
        ? undefined
        : context.cache?.getTokens(context.counter.name, content.hash);
    if (tokens !== undefined) return { repo, path, bytes: content.bytes, tokens };
  }
  return { repo, path, bytes: info.size, tokens: estimateOf(info.size), estimated: true };
}

/**
 * One candidate's size and, when its count is not cached, its text. Records a skip (binary,
 * too large, unreadable) and returns undefined for a file that is left out.
 */
function readCandidate(
  candidate: Candidate,
  context: MeasureContext,
): { file: ScopeFile; hash: string | undefined; bytes: Buffer | undefined } | undefined {
  const { repo, root, path, follow } = candidate;
  const { cache, counter, bytesOnly, maxFileBytes } = context;
  // The cache knows a file by its absolute path (the root is a real path): one string for both.
  const absolute = `${root}/${path}`;
  const key = absolute;
  context.absolute = absolute;
  try {
    // Seen before: one lstat says whether it changed. Never seen: read it without a separate stat.
    let content = cache?.getContent(key);
    let buffer: Buffer | undefined;
    if (content) {
      const info = follow ? statSync(absolute) : lstatSync(absolute);
      if (!info.isFile() || !sameIdentity(info, content.identity) || info.size > maxFileBytes) content = undefined;
    }
    if (!content) {
      const read = readWithStats(absolute, maxFileBytes, follow);
      if (!read.buffer) {
        context.identity = identityOf(read.info);
        context.skipped.push({ repo, path, reason: "too-large" });
        return undefined;
      }
      buffer = read.buffer;
      content = {
        identity: identityOf(read.info),
        bytes: buffer.length,
        binary: isBinary(buffer),
        settled: Math.max(read.info.mtimeMs, read.info.ctimeMs) < context.startedAt - RACY_MS,
      };
      if (!bytesOnly && !content.binary) content.hash = createHash("sha256").update(buffer).digest("hex");
      cache?.setContent(key, content);
    }
    context.identity = content.identity;
    if (content.binary) {
      context.skipped.push({ repo, path, reason: "binary" });
      return undefined;
    }
    const file: ScopeFile = { repo, path, bytes: content.bytes, tokens: 0 };
    if (bytesOnly) {
      file.tokens = estimateOf(content.bytes);
      return { file, hash: undefined, bytes: undefined };
    }
    const tokens = content.hash === undefined ? undefined : cache?.getTokens(counter.name, content.hash);
    if (tokens !== undefined) {
      file.tokens = tokens;
      return { file, hash: content.hash, bytes: undefined };
    }
    // A cached fingerprint whose count was evicted (or never taken: an estimate's entry): read again.
    buffer ??= readWithStats(absolute, maxFileBytes, follow).buffer ?? Buffer.alloc(0);
    let hash = content.hash;
    if (hash === undefined) {
      hash = createHash("sha256").update(buffer).digest("hex");
      cache?.setContent(key, { ...content, hash });
    }
    return { file, hash, bytes: buffer };
  } catch (error) {
    if ((error as { code?: string }).code === undefined) throw error;
    context.skipped.push({ repo, path, reason: "unreadable" });
    return undefined;
  }
}

/** A missing literal path the task may create: declared in expected_files as created, or in a directory that exists. */
function willCreate(root: string, repo: string, path: string, declared: ReadonlySet<string>): boolean {
  if (isGlob(path)) return false;
  const normalized = normalizeRepoPath(path);
  if (!normalized.ok) return false;
  if (declared.has(`${repo}\0${normalized.path}`)) return true;
  const slash = normalized.path.lastIndexOf("/");
  const parent = resolvePathInside(root, slash === -1 ? "." : normalized.path.slice(0, slash), { links: "refuse" });
  return parent.ok && parent.stats?.isDirectory() === true;
}

function hotspots(
  files: readonly ScopeFile[],
  limit: number,
  { advice = false } = {},
): { directories: ScopeHotspot[]; files: ScopeHotspot[] } {
  const directories = new Map<string, ScopeHotspot>();
  for (const file of files) {
    let slash = file.path.lastIndexOf("/");
    while (slash > 0) {
      const path = file.path.slice(0, slash);
      const key = `${file.repo}\u0000${path}`;
      const spot = directories.get(key) ?? { repo: file.repo, path, files: 0, tokens: 0 };
      spot.files++;
      spot.tokens += file.tokens;
      directories.set(key, spot);
      slash = path.lastIndexOf("/");
    }
  }
  const heaviest = (spots: ScopeHotspot[]) =>
    spots.sort((left, right) => right.tokens - left.tokens || compareFiles(left, right)).slice(0, limit);
  return {
    // As advice, a directory holding every file of the scope (the chain `packages`, `packages/ai`,
    // ...) says nothing: removing it leaves nothing. `largest()` keeps them (they are the heaviest).
    directories: heaviest(advice ? [...directories.values()].filter((spot) => spot.files < files.length) : [...directories.values()]),
    files: heaviest(files.map((file) => ({ repo: file.repo, path: file.path, files: 1, tokens: file.tokens }))),
  };
}

function createPermissions(spec: TaskSpec, walkers: readonly RepoWalker[]) {
  const byRepo = new Map(
    walkers.map((walker) => [
      walker.repo.name,
      {
        root: walker.root,
        inScope: createScopeMatcher(walker.repo.paths, walker.repo.exclude),
        excluded: compileEntries(walker.repo.exclude),
        refused: walker.refused.map((entry) => entry.path),
        links: walker.links,
      },
    ]),
  );
  const { primaryRepo, allowedCrossRepoReads, allowedCrossRepoWrites } = spec.ownership;

  /** The normalized path, or undefined when it cannot name a file inside the repo. */
  const clean = (repo: string, path: string): string | undefined => {
    if (typeof repo !== "string" || typeof path !== "string") return undefined;
    let candidate = path;
    const root = byRepo.get(repo)?.root;
    if (root && (candidate === root || candidate.startsWith(`${root}/`))) candidate = candidate.slice(root.length + 1) || ".";
    const normalized = normalizeRepoPath(candidate);
    if (!normalized.ok || touchesGitDirectory(normalized.path)) return undefined;
    return normalized.path;
  };

  /**
   * Where the path really is on disk, one component at a time: undefined when a link on the way
   * leaves the repo (`etclink/passwd` with `etclink -> /etc`), loops, or leads into `.git`.
   */
  const onDisk = (repo: string, path: string): string | undefined => {
    const root = byRepo.get(repo)?.root;
    if (!root) return path;
    let resolved: ReturnType<typeof resolvePathInside>;
    try {
      resolved = resolvePathInside(root, path, { links: "inside" });
    } catch {
      return undefined;
    }
    if (!resolved.ok || touchesGitDirectory(resolved.real)) return undefined;
    return resolved.real;
  };

  /**
   * Reads need the path as written inside the scope and none of its symlink-resolved forms
   * excluded; writes need every form inside the scope, so a link cannot carry a write elsewhere.
   */
  const inScope = (repo: string, path: string, everyForm: boolean): boolean => {
    const entry = byRepo.get(repo);
    if (!entry) return false;
    const real = onDisk(repo, path);
    if (real === undefined) return false;
    const forms = resolveLinks(entry.links, path);
    if (!forms.includes(real)) forms.push(real);
    const allowed = (form: string) => !entry.refused.some((refused) => isPathWithin(form, refused));
    if (!forms.every(allowed)) return false;
    if (everyForm) return forms.every(entry.inScope);
    return entry.inScope(path) && forms.every((form) => !entry.excluded(form) && !touchesGitDirectory(form));
  };

  return {
    canRead(repo: string, path: string): boolean {
      const normalized = clean(repo, path);
      if (normalized === undefined) return false;
      if (allowedCrossRepoReads.includes(repo) || allowedCrossRepoWrites.includes(repo))
        return byRepo.has(repo) ? onDisk(repo, normalized) !== undefined : true;
      return inScope(repo, normalized, false);
    },
    canWrite(repo: string, path: string): boolean {
      const normalized = clean(repo, path);
      if (normalized === undefined) return false;
      if (allowedCrossRepoWrites.includes(repo)) return byRepo.has(repo) ? onDisk(repo, normalized) !== undefined : true;
      return repo === primaryRepo && inScope(repo, normalized, true);
    },
  };
}

/** The path as written, then as it reads after following known directory symlinks, hop by hop. */
function resolveLinks(links: ReadonlyMap<string, string>, path: string): string[] {
  const forms = [path];
  let current = path;
  for (let hop = 0; hop < 16; hop++) {
    let link: string | undefined;
    for (const prefix of links.keys()) if (prefix !== "." && isPathWithin(current, prefix)) link = prefix;
    if (link === undefined) break;
    const target = links.get(link)!;
    const rest = current.slice(link.length);
    current = target === "." ? rest.replace(/^\//, "") || "." : `${target}${rest}`;
    if (forms.includes(current)) break;
    forms.push(current);
  }
  return forms;
}

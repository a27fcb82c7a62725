import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, realpathSync } from "node:fs";
import { join } from "node:path";
import type { AgentCommit, ChangedPath, GitFileMode, RepoChangeSet } from "@bulkhead/core";
import ignoreModule, { type Ignore } from "ignore";
import { readAgentCommits } from "./read-agent-git.js";

// `ignore` is CommonJS: its function is the module itself, typed as a default export.
const ignore = ((ignoreModule as unknown as { default?: unknown }).default ?? ignoreModule) as () => Ignore;

/**
 * The largest file a change set carries, in bytes (64 MiB). A bigger file is listed in `skipped`
 * with its size, never read into host memory.
 */
export const MAX_CHANGED_FILE_BYTES = 64 * 1024 * 1024;

/** One entry of a git tree, flattened: its mode and object id. */
export interface TreeEntry {
  readonly mode: string;
  readonly oid: string;
}

/** What {@link readRepoChanges} reads: one repo directory of a workspace against its base commit. */
export interface ReadRepoChangesOptions {
  /** The repo's name in the project. */
  readonly repo: string;
  /** The branch the clone was made on. */
  readonly branch: string;
  /** The commit the clone started from, present in `source`. */
  readonly baseSha: string;
  /** The user's source repository (trusted): the base tree is read there. */
  readonly source: string;
  /** The source's git directory (where its objects are). @default `<source>/.git` */
  readonly sourceGitdir?: string;
  /** The workspace root the agent can write (absolute). */
  readonly workspace: string;
  /** The repo's directory, relative to `workspace` (each component must be a real directory). */
  readonly path: string;
  /** @default MAX_CHANGED_FILE_BYTES */
  readonly maxFileBytes?: number;
  /** A base tree read earlier for the same commit (by {@link readBaseTree}): not read again. */
  readonly baseTree?: Map<string, TreeEntry>;
}

/** A change set of one repo, plus the workspace's entries, for callers that compare further. */
export interface RepoChanges extends RepoChangeSet {
  /** Every path the workspace holds now (files and links), with its recomputed blob id. */
  readonly entries: ReadonlyMap<string, TreeEntry>;
}

const sha1 = (type: string, bytes: Uint8Array): string =>
  createHash("sha1").update(`${type} ${bytes.length}\0`).update(bytes).digest("hex");

/** The git blob id of `bytes`, computed on the host. */
export const blobId = (bytes: Uint8Array): string => sha1("blob", bytes);

/**
 * Every entry of a commit's tree in the trusted source repository, by path (trees included, as
 * mode `040000`), from one `git ls-tree -r -t -z` there. The source repo is the user's: its own
 * config is theirs to trust; nothing the agent wrote is read.
 */
export async function readBaseTree(source: string, commit: string): Promise<Map<string, TreeEntry>> {
  const out = await new Promise<Buffer>((resolve, reject) => {
    execFile(
      "git",
      ["-C", source, "ls-tree", "-r", "-t", "-z", "--full-tree", `${commit}^{tree}`],
      { encoding: "buffer", maxBuffer: 1024 * 1024 * 1024 },
      (error, stdout, stderr) =>
        error
          ? reject(new Error(`git ls-tree ${commit} in ${source}: ${stderr.toString("utf8").trim() || error.message}`))
          : resolve(stdout),
    );
  });
  const tree = new Map<string, TreeEntry>();
  let start = 0;
  // `<mode> <type> <oid>\t<path>\0`, paths raw (no quoting with -z).
  while (start < out.length) {
    const end = out.indexOf(0, start);
    const stop = end === -1 ? out.length : end;
    const tab = out.indexOf(9, start);
    if (tab > start && tab < stop) {
      const [mode = "", , oid = ""] = out.toString("latin1", start, tab).split(" ");
      tree.set(out.toString("utf8", tab + 1, stop), { mode, oid });
    }
    start = stop + 1;
  }
  return tree;
}

/** Directory types a walk descends into, and file types it reads; anything else is skipped. */
interface TypedEntry {
  isFIFO(): boolean;
  isSocket(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}
const SPECIAL = (entry: TypedEntry): string | undefined =>
  entry.isFIFO()
    ? "is a named pipe"
    : entry.isSocket()
      ? "is a socket"
      : entry.isCharacterDevice() || entry.isBlockDevice()
        ? "is a device"
        : undefined;

/**
 * Reads what the agent changed in one repo of a workspace, as hostile bytes, with nothing run in
 * or configured by the workspace: the directory is walked without following any link (a visited
 * set of device and inode keeps a loop to one visit), each regular file is opened with
 * `O_NOFOLLOW` and hashed as a git blob on the host, links are reported with their target, and
 * every entry is compared by content with the base tree read from the trusted source repository.
 * The agent's index, config, attributes and stat data are never used. New files that the
 * workspace's `.gitignore` files ignore are left out (their patterns are only matched, never run).
 *
 * Call it with the container paused, so nothing changes while it reads.
 */
export async function readRepoChanges(options: ReadRepoChangesOptions): Promise<RepoChanges> {
  const { repo, branch, baseSha, source, workspace, path, maxFileBytes = MAX_CHANGED_FILE_BYTES } = options;
  const base = options.baseTree ?? (await readBaseTree(source, baseSha));
  const root = realDirectory(workspace, path);
  const skipped: { path: string; reason: string }[] = [];
  const entries = new Map<string, TreeEntry>();
  const contents = new Map<string, { bytes?: Uint8Array; target?: string }>();
  const skippedPaths = new Set<string>();
  // Directories the base tree has (tracked content below): walked even when a .gitignore matches.
  const baseDirs = new Set<string>();
  for (const [entryPath, entry] of base) if (entry.mode === "040000" || entry.mode === "160000") baseDirs.add(entryPath);
  const visited = new Set<string>();
  const rootStat = lstatSync(root);
  visited.add(`${rootStat.dev}:${rootStat.ino}`);
  const stack: { dir: string; prefix: string; ignores: { prefix: string; rules: Ignore }[] }[] = [{ dir: root, prefix: "", ignores: [] }];
  const skip = (entryPath: string, reason: string) => {
    skipped.push({ path: entryPath, reason });
    skippedPaths.add(entryPath);
  };
  while (stack.length > 0) {
    const { dir, prefix, ignores: inherited } = stack.pop()!;
    const names = readdirSync(dir, { withFileTypes: true, encoding: "buffer" });
    let ignores = inherited;
    const gitignore = names.find((entry) => entry.name.equals(GITIGNORE) && entry.isFile());
    if (gitignore) {
      const read = readFileNoFollow(join(dir, ".gitignore"), 1024 * 1024);
      if (read.bytes) ignores = [...inherited, { prefix, rules: ignore().add(Buffer.from(read.bytes).toString("utf8")) }];
    }
    for (const dirent of names) {
      const rawName = dirent.name;
      if (rawName.equals(DOT_GIT)) continue;
      const name = rawName.toString("utf8");
      const entryPath = prefix + name;
      if (!Buffer.from(name, "utf8").equals(rawName)) {
        skip(prefix + rawName.toString("latin1"), "its name is not valid UTF-8");
        continue;
      }
      const absolute = join(dir, name);
      // Some file systems leave the type unknown: then lstat, which never follows a link either.
      const kind: TypedEntry =
        dirent.isFile() || dirent.isDirectory() || dirent.isSymbolicLink() || SPECIAL(dirent) ? dirent : lstatSync(absolute);
      const special = SPECIAL(kind);
      if (special) {
        skip(entryPath, `${special}: only files and links are read`);
        continue;
      }
      const tracked = base.has(entryPath);
      if (kind.isDirectory()) {
        if (base.get(entryPath)?.mode === "160000") continue;
        if (!baseDirs.has(entryPath) && isIgnored(ignores, entryPath, true)) continue;
        const stat = lstatSync(absolute);
        const key = `${stat.dev}:${stat.ino}`;
        if (visited.has(key)) {
          skip(entryPath, "is a directory already walked (a loop)");
          continue;
        }
        visited.add(key);
        stack.push({ dir: absolute, prefix: `${entryPath}/`, ignores });
        continue;
      }
      if (!tracked && isIgnored(ignores, entryPath, false)) continue;
      if (kind.isSymbolicLink()) {
        const rawTarget = readlinkSync(absolute, { encoding: "buffer" });
        const target = rawTarget.toString("utf8");
        if (!Buffer.from(target, "utf8").equals(rawTarget)) {
          skip(entryPath, "is a link whose target is not valid UTF-8");
          continue;
        }
        const oid = blobId(rawTarget);
        entries.set(entryPath, { mode: "120000", oid });
        const was = base.get(entryPath);
        if (!was || was.mode !== "120000" || was.oid !== oid) contents.set(entryPath, { target });
        continue;
      }
      const read = readFileNoFollow(absolute, maxFileBytes);
      if (read.skipped) {
        skip(entryPath, read.skipped);
        continue;
      }
      const oid = blobId(read.bytes!);
      const mode = read.executable ? "100755" : "100644";
      entries.set(entryPath, { mode, oid });
      const was = base.get(entryPath);
      if (!was || was.mode !== mode || was.oid !== oid) contents.set(entryPath, { bytes: read.bytes! });
    }
  }
  const paths: ChangedPath[] = [];
  for (const [entryPath, content] of contents) {
    const entry = entries.get(entryPath)!;
    const was = base.get(entryPath);
    const baseEntry = was && isBlobMode(was.mode) ? { base: { mode: was.mode as GitFileMode, oid: was.oid } } : {};
    paths.push({
      path: entryPath,
      kind: baseEntry.base ? "modified" : "added",
      entry:
        content.target !== undefined
          ? { type: "link", mode: "120000", target: content.target, oid: entry.oid }
          : { type: "file", mode: entry.mode as "100644" | "100755", bytes: content.bytes!, oid: entry.oid },
      ...baseEntry,
    });
  }
  for (const [entryPath, was] of base) {
    if (!isBlobMode(was.mode) || entries.has(entryPath) || skippedPaths.has(entryPath)) continue;
    paths.push({ path: entryPath, kind: "deleted", base: { mode: was.mode as GitFileMode, oid: was.oid } });
  }
  paths.sort((left, right) => compareBytes(left.path, right.path));
  skipped.sort((left, right) => compareBytes(left.path, right.path));
  const { headSha, commits, problem } = await readAgentCommits({
    workspace,
    path,
    branch,
    baseSha,
    source,
    ...(options.sourceGitdir ? { sourceGitdir: options.sourceGitdir } : {}),
  });
  if (problem) skipped.push({ path: ".git", reason: problem });
  return { repo, branch, baseSha, headSha, commits: commits as AgentCommit[], paths, skipped, entries };
}

const GITIGNORE = Buffer.from(".gitignore");
const DOT_GIT = Buffer.from(".git");

const isBlobMode = (mode: string): boolean => mode === "100644" || mode === "100755" || mode === "120000";

/** Byte order of the UTF-8 encodings, as git sorts paths. */
export function compareBytes(left: string, right: string): number {
  return Buffer.compare(Buffer.from(left, "utf8"), Buffer.from(right, "utf8"));
}

/** The deepest `.gitignore` that has an opinion decides (a simplification of git's rule order). */
function isIgnored(ignores: readonly { prefix: string; rules: Ignore }[], entryPath: string, directory: boolean): boolean {
  for (let index = ignores.length - 1; index >= 0; index--) {
    const { prefix, rules } = ignores[index]!;
    const relative = entryPath.slice(prefix.length) + (directory ? "/" : "");
    const verdict = rules.test(relative);
    if (verdict.ignored) return true;
    if (verdict.unignored) return false;
  }
  return false;
}

/**
 * `path` under `workspace`, checked one component at a time to be a real directory (never a
 * link), so a repo directory the agent replaced with a link to a host path is refused.
 */
export function realDirectory(workspace: string, path: string): string {
  let current = realpathSync(workspace);
  for (const part of path.split("/").filter(Boolean)) {
    if (part === "." || part === "..") throw new Error(`${path}: "." and ".." are not allowed in a workspace path`);
    current = join(current, part);
    const stat = lstatSync(current);
    if (!stat.isDirectory())
      throw new Error(`${join(workspace, path)} is not a directory (${stat.isSymbolicLink() ? "a link" : "a file"}): it is never followed`);
  }
  return current;
}

/**
 * Reads a regular file whose directory was already checked, never through a link (`O_NOFOLLOW`,
 * and a non-blocking open, so a pipe swapped in cannot hang the host), up to `maxBytes`.
 */
export function readFileNoFollow(path: string, maxBytes: number): { bytes?: Uint8Array; executable?: boolean; skipped?: string } {
  let descriptor: number;
  try {
    descriptor = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { skipped: code === "ELOOP" ? "became a link while read" : `cannot be opened (${code})` };
  }
  try {
    const stat = fstatSync(descriptor);
    if (!stat.isFile()) return { skipped: "is not a regular file" };
    if (stat.size > maxBytes) return { skipped: `is ${stat.size} bytes, over the ${maxBytes}-byte limit of a change set` };
    const bytes = Buffer.allocUnsafe(stat.size);
    let offset = 0;
    while (offset < stat.size) {
      const read = readSync(descriptor, bytes, offset, stat.size - offset, offset);
      if (read === 0) break;
      offset += read;
    }
    return { bytes: offset === stat.size ? bytes : bytes.subarray(0, offset), executable: (stat.mode & 0o100) !== 0 };
  } finally {
    closeSync(descriptor);
  }
}

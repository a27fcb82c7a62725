import { createHash } from "node:crypto";
import * as nodeFs from "node:fs";
import { join, resolve } from "node:path";
import type { AgentCommit } from "@bulkhead/core";
import git from "isomorphic-git";
import { readFileNoFollow, realDirectory, type TreeEntry } from "./read-changes.js";

/** The most commits a change set lists for one repo (oldest dropped first). */
export const MAX_AGENT_COMMITS = 1000;
/** The largest git file (pack, index of a pack, loose object) read from an agent's clone. */
const MAX_GIT_FILE_BYTES = 512 * 1024 * 1024;

const enoent = (path: string) => Object.assign(new Error(`ENOENT: ${path}`), { code: "ENOENT" });

/**
 * A read-only file system for isomorphic-git over an agent's `.git` directory: every component
 * below the root is checked to be a real directory, files are opened with `O_NOFOLLOW`, nothing
 * outside the root is reached, and every write is refused. isomorphic-git itself runs nothing
 * (no hooks, filters or fsmonitor); this keeps it from reading through a link to the host.
 */
function confinedFs(root: string): { promises: Record<string, (...args: never[]) => Promise<unknown>> } {
  const inside = (given: string): string => {
    // isomorphic-git builds paths from ref names the agent wrote: normalize before judging.
    const path = resolve(given);
    if (path !== root && !path.startsWith(`${root}/`)) throw enoent(given);
    const relative = path.slice(root.length + 1);
    const parts = relative.split("/").filter(Boolean);
    // Every directory on the way must be a real one under the root.
    realDirectory(root, parts.slice(0, -1).join("/"));
    return path;
  };
  const refuse = async () => {
    throw Object.assign(new Error("EROFS: the agent's repository is read-only to the host"), { code: "EROFS" });
  };
  const promises = {
    readFile: async (path: string, options?: { encoding?: string } | string) => {
      const read = readFileNoFollow(inside(path), MAX_GIT_FILE_BYTES);
      if (!read.bytes) throw enoent(path);
      const encoding = typeof options === "string" ? options : options?.encoding;
      return encoding ? Buffer.from(read.bytes).toString(encoding as BufferEncoding) : Buffer.from(read.bytes);
    },
    readdir: async (path: string) => {
      if (path !== root) inside(join(path, "x"));
      const stat = nodeFs.lstatSync(path);
      if (!stat.isDirectory()) throw Object.assign(new Error(`ENOTDIR: ${path}`), { code: "ENOTDIR" });
      return nodeFs.readdirSync(path);
    },
    // stat never follows a link here: a link is what it is.
    stat: async (path: string) => nodeFs.lstatSync(inside(path)),
    lstat: async (path: string) => nodeFs.lstatSync(inside(path)),
    readlink: async () => {
      throw enoent("readlink");
    },
    writeFile: refuse,
    mkdir: refuse,
    rmdir: refuse,
    unlink: refuse,
    symlink: refuse,
    chmod: refuse,
  };
  return { promises } as unknown as { promises: Record<string, (...args: never[]) => Promise<unknown>> };
}

/**
 * Reads git objects of an agent's clone, and of the trusted source repository it borrows from
 * (the clone's alternates are never read: the source is the only other place looked at), with
 * each object's id recomputed from its bytes.
 */
export class AgentObjects {
  readonly #clone: { fs: ReturnType<typeof confinedFs>; gitdir: string; cache: object } | undefined;
  readonly #source: { fs: typeof nodeFs; gitdir: string; cache: object };

  constructor(cloneGitdir: string | undefined, sourceGitdir: string) {
    this.#clone = cloneGitdir ? { fs: confinedFs(cloneGitdir), gitdir: cloneGitdir, cache: {} } : undefined;
    this.#source = { fs: nodeFs, gitdir: sourceGitdir, cache: {} };
  }

  /** The object, verified, and whether it came from the source repository. */
  async read(oid: string): Promise<{ type: string; object: Buffer; fromSource: boolean }> {
    if (!/^[0-9a-f]{40}$/.test(oid)) throw new Error(`${JSON.stringify(oid)} is not an object id`);
    for (const [where, fromSource] of [
      [this.#clone, false],
      [this.#source, true],
    ] as const) {
      if (!where) continue;
      const found = await git
        .readObject({ fs: where.fs as never, gitdir: where.gitdir, oid, format: "content", cache: where.cache })
        .catch(() => undefined);
      if (!found) continue;
      const object = Buffer.from(found.object as Uint8Array);
      const computed = createHash("sha1").update(`${found.type} ${object.length}\0`).update(object).digest("hex");
      if (computed !== oid) throw new Error(`object ${oid} hashes to ${computed}: the agent's repository is corrupt or forged`);
      return { type: found.type, object, fromSource };
    }
    throw new Error(`object ${oid} is in neither the clone nor the source repository`);
  }

  /** A ref of the clone, read as a file (loose or packed), never through a link. */
  async resolveBranch(branch: string): Promise<string | undefined> {
    if (!this.#clone) return undefined;
    const oid = await git
      .resolveRef({ fs: this.#clone.fs as never, gitdir: this.#clone.gitdir, ref: `refs/heads/${branch}`, depth: 2 })
      .catch(() => undefined);
    return oid && /^[0-9a-f]{40}$/.test(oid) ? oid : undefined;
  }
}

/** The headers and message of a commit object. */
export function parseCommit(object: Buffer): { tree: string; parents: string[]; author: AgentCommit["author"]; message: string } {
  const text = object.toString("utf8");
  const split = text.indexOf("\n\n");
  const headers = (split === -1 ? text : text.slice(0, split)).split("\n");
  const message = split === -1 ? "" : text.slice(split + 2);
  let tree = "";
  const parents: string[] = [];
  let author: AgentCommit["author"] = { name: "", email: "", timestamp: 0 };
  for (const line of headers) {
    if (line.startsWith("tree ")) tree = line.slice(5);
    else if (line.startsWith("parent ")) parents.push(line.slice(7));
    else if (line.startsWith("author ")) {
      const match = /^author (.*) <([^>]*)> (\d+) [+-]\d{4}$/.exec(line);
      if (match) author = { name: match[1]!, email: match[2]!, timestamp: Number(match[3]) };
    }
  }
  return { tree, parents, author, message };
}

/** The `.git` directory of a repo directory in the workspace, when it is a real directory. */
function cloneGitdir(workspace: string, path: string): string | undefined {
  try {
    return realDirectory(workspace, `${path}/.git`);
  } catch {
    return undefined;
  }
}

/** The objects of the clone at `path` in the workspace, and of its source (`git rev-parse --git-common-dir` there). */
export function agentObjects(workspace: string, path: string, sourceGitdir: string): AgentObjects {
  return new AgentObjects(cloneGitdir(workspace, path), sourceGitdir);
}

/**
 * The commits the agent made on its branch: from the branch's head along first parents until the
 * base commit (or a commit of the source repository), oldest first, at most
 * {@link MAX_AGENT_COMMITS}. Informational: the workspace's files are the change, not these.
 */
export async function readAgentCommits({
  workspace,
  path,
  branch,
  baseSha,
  source,
  sourceGitdir = join(source, ".git"),
}: {
  workspace: string;
  path: string;
  branch: string;
  baseSha: string;
  source: string;
  sourceGitdir?: string;
}): Promise<{ headSha: string; commits: AgentCommit[]; problem?: string }> {
  const gitdir = cloneGitdir(workspace, path);
  if (!gitdir) return { headSha: baseSha, commits: [], problem: "is not a directory: the agent's commits were not read" };
  const objects = new AgentObjects(gitdir, sourceGitdir);
  const head = await objects.resolveBranch(branch);
  if (!head) return { headSha: baseSha, commits: [], problem: `has no readable branch ${branch}: the agent's commits were not read` };
  const commits: AgentCommit[] = [];
  try {
    let oid: string | undefined = head;
    while (oid && oid !== baseSha && commits.length < MAX_AGENT_COMMITS) {
      const { type, object, fromSource } = await objects.read(oid);
      if (fromSource || type !== "commit") break;
      const parsed = parseCommit(object);
      commits.push({ oid, message: parsed.message, author: parsed.author });
      oid = parsed.parents[0];
    }
  } catch (error) {
    return { headSha: head, commits: commits.reverse(), problem: `could not be read (${(error as Error).message})` };
  }
  return { headSha: head, commits: commits.reverse() };
}

/**
 * The blobs and links of a commit's tree, read from the agent's clone (and the source), every
 * object verified. Subtrees equal to the base tree's are taken from `base` without reading them.
 */
export async function readAgentTree(
  objects: AgentObjects,
  commit: string,
  base: ReadonlyMap<string, TreeEntry>,
): Promise<Map<string, TreeEntry>> {
  const { type, object } = await objects.read(commit);
  if (type !== "commit") throw new Error(`${commit} is a ${type}, not a commit`);
  const result = new Map<string, TreeEntry>();
  const sameAsBase = new Set<string>();
  const walk = async (tree: string, prefix: string): Promise<void> => {
    const read = await objects.read(tree);
    if (read.type !== "tree") throw new Error(`${tree} is a ${read.type}, not a tree`);
    const bytes = read.object;
    let offset = 0;
    while (offset < bytes.length) {
      const space = bytes.indexOf(32, offset);
      const nul = bytes.indexOf(0, space);
      const mode = bytes.toString("latin1", offset, space).padStart(6, "0");
      const name = bytes.toString("utf8", space + 1, nul);
      const oid = bytes.toString("hex", nul + 1, nul + 21);
      offset = nul + 21;
      const entryPath = prefix + name;
      if (mode === "040000") {
        const was = base.get(entryPath);
        if (was?.mode === "040000" && was.oid === oid) sameAsBase.add(entryPath);
        else await walk(oid, `${entryPath}/`);
      } else if (mode !== "160000") result.set(entryPath, { mode, oid });
    }
  };
  await walk(parseCommit(object).tree, "");
  if (sameAsBase.size > 0)
    for (const [entryPath, entry] of base) {
      if (entry.mode === "040000" || entry.mode === "160000") continue;
      for (let slash = entryPath.indexOf("/"); slash !== -1; slash = entryPath.indexOf("/", slash + 1))
        if (sameAsBase.has(entryPath.slice(0, slash))) {
          result.set(entryPath, entry);
          break;
        }
    }
  return result;
}

import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { join } from "node:path";
import { deflateSync, inflateSync } from "node:zlib";
import { writeFileAtomicSync } from "@bulkhead/core";
import git from "isomorphic-git";

/** A tree entry: a file (mode 100644/100755/120000) or a subtree (mode 40000). */
export interface TreeEntry {
  mode: string;
  name: string;
  oid: string;
}

/** Git's tree order: names compared as bytes, a subtree as if its name ended in "/". */
function treeOrder(left: TreeEntry, right: TreeEntry): number {
  const a = Buffer.from(left.mode === "40000" ? `${left.name}/` : left.name);
  const b = Buffer.from(right.mode === "40000" ? `${right.name}/` : right.name);
  return Buffer.compare(a, b);
}

/**
 * Reads and writes git objects directly: loose objects are written with sha1 and zlib like git
 * does (temporary file, then rename, so a crash never leaves half an object), and read back
 * without a library; objects only found in packs are read through isomorphic-git.
 */
export class ObjectStore {
  readonly #cache = {};

  constructor(
    readonly gitdir: string,
    readonly dir: string,
  ) {}

  write(type: "blob" | "tree" | "commit", content: Buffer): string {
    const header = Buffer.from(`${type} ${content.length}\0`);
    const oid = createHash("sha1").update(header).update(content).digest("hex");
    const path = join(this.gitdir, "objects", oid.slice(0, 2), oid.slice(2));
    if (fs.existsSync(path)) return oid;
    fs.mkdirSync(join(this.gitdir, "objects", oid.slice(0, 2)), { recursive: true });
    // Objects are content-addressed and re-creatable: no fsync, like git's default.
    writeFileAtomicSync(path, deflateSync(Buffer.concat([header, content]), { level: 1 }), { mode: 0o444, fsync: false });
    return oid;
  }

  writeTree(entries: readonly TreeEntry[]): string {
    const sorted = [...entries].sort(treeOrder);
    return this.write(
      "tree",
      Buffer.concat(sorted.flatMap((entry) => [Buffer.from(`${entry.mode} ${entry.name}\0`), Buffer.from(entry.oid, "hex")])),
    );
  }

  #loose(oid: string): { type: string; content: Buffer } | undefined {
    let data: Buffer;
    try {
      data = inflateSync(fs.readFileSync(join(this.gitdir, "objects", oid.slice(0, 2), oid.slice(2))));
    } catch {
      return undefined;
    }
    const nul = data.indexOf(0);
    return { type: data.toString("latin1", 0, data.indexOf(0x20)), content: data.subarray(nul + 1) };
  }

  async readTree(oid: string): Promise<TreeEntry[]> {
    const loose = this.#loose(oid);
    if (!loose) {
      const { tree } = await git.readTree({ fs, dir: this.dir, gitdir: this.gitdir, oid, cache: this.#cache });
      return tree.map((entry) => ({ mode: entry.mode === "040000" ? "40000" : entry.mode, name: entry.path, oid: entry.oid }));
    }
    const entries: TreeEntry[] = [];
    const { content } = loose;
    for (let at = 0; at < content.length;) {
      const space = content.indexOf(0x20, at);
      const nul = content.indexOf(0, space);
      entries.push({
        mode: content.toString("latin1", at, space),
        name: content.toString("utf8", space + 1, nul),
        oid: content.toString("hex", nul + 1, nul + 21),
      });
      at = nul + 21;
    }
    return entries;
  }

  /** True when the object is in this repository (loose or packed). */
  async has(oid: string): Promise<boolean> {
    if (fs.existsSync(join(this.gitdir, "objects", oid.slice(0, 2), oid.slice(2)))) return true;
    return git.readObject({ fs, dir: this.dir, gitdir: this.gitdir, oid, format: "deflated", cache: this.#cache }).then(
      () => true,
      () => false,
    );
  }

  /** A blob's bytes. */
  async readBlob(oid: string): Promise<Buffer> {
    const loose = this.#loose(oid);
    if (loose) return loose.content;
    return Buffer.from((await git.readBlob({ fs, dir: this.dir, gitdir: this.gitdir, oid, cache: this.#cache })).blob);
  }

  /** The entry at a repo-relative path in a tree, or undefined when there is none. */
  async entryAt(tree: string | undefined, path: string): Promise<TreeEntry | undefined> {
    let entry: TreeEntry | undefined;
    let oid = tree;
    for (const name of path.split("/")) {
      if (oid === undefined) return undefined;
      entry = (await this.readTree(oid)).find((candidate) => candidate.name === name);
      oid = entry?.mode === "40000" ? entry.oid : undefined;
    }
    return entry;
  }

  async commitTree(oid: string): Promise<string> {
    const loose = this.#loose(oid);
    if (loose) return loose.content.toString("latin1", 5, 45);
    return (await git.readCommit({ fs, dir: this.dir, gitdir: this.gitdir, oid, cache: this.#cache })).commit.tree;
  }

  /** A commit's first parent, or undefined for a root commit. */
  async commitParent(oid: string): Promise<string | undefined> {
    const loose = this.#loose(oid);
    if (!loose) return (await git.readCommit({ fs, dir: this.dir, gitdir: this.gitdir, oid, cache: this.#cache })).commit.parent[0];
    // The header is "tree <oid>\n" (46 bytes), then any "parent <oid>\n" lines.
    return loose.content.toString("latin1", 46, 53) === "parent " ? loose.content.toString("latin1", 53, 93) : undefined;
  }
}

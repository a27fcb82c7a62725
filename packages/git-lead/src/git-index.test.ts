import { readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTempDir, git, initRepo } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import {
  createIndexEntry,
  describeIndexEntry,
  editIndex,
  findIndexEntry,
  parseIndex,
  serializeIndex,
  type IndexEntry,
} from "./git-index.js";

/** `git ls-files -s` as lines. */
const listed = (repo: string) => git(repo, ["ls-files", "-s"]).split("\n");

/** An entry for `path` with the blob of `oid`, as the lead writes them. */
const entryFor = (repo: string, path: string, oid: string): IndexEntry =>
  createIndexEntry(path, oid, 0o100644, statSync(join(repo, ".git", "index")));

describe("editIndex", () => {
  it("re-encodes only the edited entries, and writes the same bytes as a whole serialization that git reads", async () => {
    await using dir = createTempDir();
    const repo = join(dir.path, "repo");
    const files = Object.fromEntries(Array.from({ length: 60 }, (_, index) => [`src/f${String(index).padStart(2, "0")}.ts`, `${index}\n`]));
    initRepo(repo, files);
    const indexPath = join(repo, ".git", "index");
    writeFileSync(join(repo, "src/new.ts"), "new\n");
    const blob = git(repo, ["hash-object", "-w", "src/new.ts"]).trim();
    // First edit parses the file; the next ones reuse the last serialization.
    for (const [round, path] of ["src/f10.ts", "src/f59.ts", "src/f00.ts"].entries()) {
      const result = await editIndex({ indexPath, workdir: repo }, async (index) => {
        const found = findIndexEntry(index.entries, Buffer.from(path));
        index.entries.splice(found.at, 1);
        if (round === 0) {
          const added = findIndexEntry(index.entries, Buffer.from("src/new.ts"));
          index.entries.splice(added.at, 0, createIndexEntry("src/new.ts", blob, 0o100644, statSync(join(repo, "src/new.ts"))));
        }
        return true;
      });
      expect(result).toEqual({ edited: true });
      const bytes = readFileSync(indexPath);
      expect(serializeIndex(parseIndex(bytes)!).equals(bytes)).toBe(true);
    }
    const listed = git(repo, ["ls-files", "-s"]).trim().split("\n");
    expect(listed).toHaveLength(58);
    expect(listed.find((line) => line.endsWith("\tsrc/new.ts"))).toBe(`100644 ${blob} 0\tsrc/new.ts`);
    expect(listed.some((line) => /\tsrc\/f(00|10|59)\.ts$/.test(line))).toBe(false);
    // git verifies the trailing checksum when it reads the index.
    expect(git(repo, ["status", "--porcelain"])).toContain("D  src/f10.ts");
    const entry = parseIndex(readFileSync(indexPath))!.entries.find((candidate) => candidate.name.toString() === "src/new.ts")!;
    expect(describeIndexEntry(entry)).toEqual({ oid: blob, mode: "100644", stage: 0 });
  });

  it("copies git's own bytes for the entries it does not touch: a v3 index with extended flags and a name over 4095 bytes", async () => {
    await using dir = createTempDir();
    const repo = join(dir.path, "repo");
    initRepo(repo, { "a.ts": "a\n", "m.ts": "m\n", "z.ts": "z\n" });
    const blob = git(repo, ["hash-object", "-w", "a.ts"]);
    // A name longer than the flags can hold (0xfff), staged without a file; an intent-to-add
    // entry, which makes git write version 3 with the extended flag.
    const long = `${Array.from({ length: 22 }, (_, index) => `d${index}`.padEnd(200, "x")).join("/")}/f.ts`;
    git(repo, ["update-index", "--add", "--cacheinfo", `100644,${blob},${long}`]);
    writeFileSync(join(repo, "later.ts"), "later\n");
    git(repo, ["add", "--intent-to-add", "later.ts"]);
    const indexPath = join(repo, ".git", "index");
    const before = readFileSync(indexPath);
    expect(before.readUInt32BE(4)).toBe(3);
    const result = await editIndex({ indexPath, workdir: repo }, async (index) => {
      const found = findIndexEntry(index.entries, Buffer.from("m.ts"));
      expect(found.found).toBe(true);
      index.entries.splice(found.at, 1);
      return true;
    });
    expect(result).toEqual({ edited: true });
    const lines = listed(repo);
    expect(lines.some((line) => line.endsWith(`\t${long}`))).toBe(true);
    expect(lines.some((line) => line.endsWith("\tm.ts"))).toBe(false);
    expect(git(repo, ["status", "--porcelain"])).toContain("D  m.ts");
    expect(git(repo, ["status", "--porcelain"])).toContain(" A later.ts");
    // Every entry but the removed one is the same bytes as git wrote them.
    const after = parseIndex(readFileSync(indexPath))!.entries;
    const original = parseIndex(before)!.entries.filter((entry) => entry.name.toString() !== "m.ts");
    expect(after.map((entry) => Buffer.concat([entry.head, entry.name]).toString("hex"))).toEqual(
      original.map((entry) => Buffer.concat([entry.head, entry.name]).toString("hex")),
    );
  });

  it("stays a valid index over hundreds of edits (the runs are joined again past their limit), and edits a v4 index whole", async () => {
    await using dir = createTempDir();
    const repo = join(dir.path, "repo");
    const files = Object.fromEntries(
      Array.from({ length: 400 }, (_, index) => [`src/f${String(index).padStart(3, "0")}.ts`, `${index}\n`]),
    );
    initRepo(repo, files);
    const indexPath = join(repo, ".git", "index");
    writeFileSync(join(repo, "extra.ts"), "extra\n");
    const blob = git(repo, ["hash-object", "-w", "extra.ts"]);
    // 300 edits, each removing one entry and adding one (every other edit at the far end).
    for (let round = 0; round < 300; round++) {
      await editIndex({ indexPath, workdir: repo }, async (index) => {
        const gone = findIndexEntry(index.entries, Buffer.from(`src/f${String(round).padStart(3, "0")}.ts`));
        expect(gone.found).toBe(true);
        index.entries.splice(gone.at, 1);
        const name = round % 2 === 0 ? `src/new${String(round).padStart(3, "0")}.ts` : `zz/new${String(round).padStart(3, "0")}.ts`;
        const added = findIndexEntry(index.entries, Buffer.from(name));
        index.entries.splice(added.at, 0, entryFor(repo, name, blob));
        return true;
      });
    }
    let lines = listed(repo);
    expect(lines).toHaveLength(400);
    expect(lines.filter((line) => line.includes("\tsrc/f"))).toHaveLength(100);
    expect(lines.filter((line) => line.includes("\tzz/new"))).toHaveLength(150);
    expect([...lines].sort()).toEqual(lines.slice().sort());
    expect(serializeIndex(parseIndex(readFileSync(indexPath))!).equals(readFileSync(indexPath))).toBe(true);

    git(repo, ["update-index", "--index-version", "4"]);
    expect(readFileSync(indexPath).readUInt32BE(4)).toBe(4);
    await editIndex({ indexPath, workdir: repo }, async (index) => {
      const found = findIndexEntry(index.entries, Buffer.from("src/f399.ts"));
      expect(found.found).toBe(true);
      index.entries.splice(found.at, 1);
      return true;
    });
    expect(readFileSync(indexPath).readUInt32BE(4)).toBe(4);
    lines = listed(repo);
    expect(lines).toHaveLength(399);
    expect(lines.some((line) => line.endsWith("\tsrc/f399.ts"))).toBe(false);
    expect(lines.some((line) => line.endsWith("\tzz/new299.ts"))).toBe(true);
  });

  it("leaves an index it does not write alone, and an edit that returns false writes nothing", async () => {
    await using dir = createTempDir();
    const repo = join(dir.path, "repo");
    initRepo(repo, { "a.ts": "a\n" });
    const indexPath = join(repo, ".git", "index");
    const before = readFileSync(indexPath);
    expect(await editIndex({ indexPath, workdir: repo }, async (index) => (index.entries.splice(0, 1), false))).toEqual({ edited: false });
    expect(readFileSync(indexPath).equals(before)).toBe(true);
    expect(listed(repo)).toHaveLength(1);
    git(repo, ["update-index", "--split-index"]);
    const split = readFileSync(indexPath);
    let called = false;
    const result = await editIndex({ indexPath, workdir: repo }, async () => (called = true));
    expect(result.edited).toBe(false);
    expect(result.leftAlone).toContain("split, sparse or unknown");
    expect(called).toBe(false);
    expect(readFileSync(indexPath).equals(split)).toBe(true);
  });

  it("smudges a racily clean entry it keeps (git's racy-git rule), so git still sees the file changed after the index gets newer", async () => {
    await using dir = createTempDir();
    const repo = join(dir.path, "repo");
    initRepo(repo, { "a.ts": "aaaa\n", "b.ts": "b\n", "c.ts": "c\n" });
    const indexPath = join(repo, ".git", "index");
    const committed = git(repo, ["rev-parse", "HEAD:a.ts"]);
    // The user's edit lands in the same second as the index: same size, and the entry's stat data
    // is the file's (as when git stats a file and it changes again within that second).
    const second = new Date("2020-01-01T00:00:00.250Z");
    writeFileSync(join(repo, "a.ts"), "bbbb\n");
    utimesSync(join(repo, "a.ts"), second, second);
    const entries = parseIndex(readFileSync(indexPath))!.entries.map((entry) =>
      entry.name.toString() === "a.ts" ? createIndexEntry("a.ts", committed, 0o100644, statSync(join(repo, "a.ts"))) : entry,
    );
    writeFileSync(indexPath, serializeIndex({ version: 2, entries }));
    utimesSync(indexPath, second, new Date("2020-01-01T00:00:00.750Z"));
    // git, reading that index, treats the entry as racy and compares the content.
    expect(git(repo, ["diff-files", "--name-only"])).toBe("a.ts");
    const result = await editIndex({ indexPath, workdir: repo }, async (index) => {
      index.entries.splice(findIndexEntry(index.entries, Buffer.from("c.ts")).at, 1);
      return true;
    });
    expect(result).toEqual({ edited: true });
    // The rewritten index is newer than the file: without the smudge git would trust the stat.
    expect(git(repo, ["diff-files", "--name-only"])).toBe("a.ts");
    expect(git(repo, ["status", "--porcelain", "--", "a.ts", "b.ts"])).toBe("M a.ts");
    // Entries whose files did not change keep their stat data (b.ts was written in that second too).
    const kept = parseIndex(readFileSync(indexPath))!.entries;
    expect(kept.find((entry) => entry.name.toString() === "a.ts")!.head.readUInt32BE(36)).toBe(0);
    expect(kept.find((entry) => entry.name.toString() === "b.ts")!.head.readUInt32BE(36)).toBe(2);
  });
});

import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTempDir, git, initRepo } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { createIndexEntry, describeIndexEntry, editIndex, findIndexEntry, parseIndex, serializeIndex } from "./git-index.js";

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
      const result = await editIndex(indexPath, async (index) => {
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
});

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { unifiedDiff } from "./unified-diff.js";

/** The old and new text a whole-file unified diff holds. */
function sides(diff: string): { before: string; after: string } {
  const body = diff.split("\n").slice(5, -1);
  const pick = (mark: string) =>
    body
      .filter((line) => line[0] === " " || line[0] === mark)
      .map((line) => `${line.slice(1)}\n`)
      .join("");
  return { before: pick("-"), after: pick("+") };
}

describe("unifiedDiff", () => {
  it("keeps both whole files: the old and the new content read back from the diff", () => {
    const lines = fc.array(fc.constantFrom("a", "b", "c", "export {};", ""), { maxLength: 30 });
    fc.assert(
      fc.property(lines, lines, (old, next) => {
        const before = old.map((line) => `${line}\n`).join("");
        const after = next.map((line) => `${line}\n`).join("");
        const diff = unifiedDiff({ path: "f.ts", before: Buffer.from(before), after: Buffer.from(after) });
        expect(sides(diff)).toEqual({ before, after });
      }),
    );
  });

  it("aligns by a longest common subsequence: as many unchanged lines as any alignment can keep", () => {
    // A reference LCS length, by the plain recursion with a memo (small inputs only).
    const lcs = (left: string[], right: string[]): number => {
      const memo = new Map<string, number>();
      const go = (i: number, j: number): number => {
        if (i === left.length || j === right.length) return 0;
        const key = `${i},${j}`;
        if (!memo.has(key)) memo.set(key, left[i] === right[j] ? 1 + go(i + 1, j + 1) : Math.max(go(i + 1, j), go(i, j + 1)));
        return memo.get(key)!;
      };
      return go(0, 0);
    };
    const lines = fc.array(fc.constantFrom("a", "b", "c"), { maxLength: 12 });
    fc.assert(
      fc.property(lines, lines, (old, next) => {
        const toBytes = (list: string[]) => Buffer.from(list.map((line) => `${line}\n`).join(""));
        const body = unifiedDiff({ path: "f", before: toBytes(old), after: toBytes(next) })
          .split("\n")
          .slice(5, -1);
        expect(body.filter((line) => line[0] === " ")).toHaveLength(lcs(old, next));
        expect(body.filter((line) => line[0] === "-")).toHaveLength(old.length - lcs(old, next));
      }),
      { numRuns: 300 },
    );
    // Removed lines come before the added ones that replace them, as git shows them.
    const body = unifiedDiff({ path: "f", before: Buffer.from("a\nb\nc\n"), after: Buffer.from("a\nx\nc\n") })
      .split("\n")
      .slice(5, -1);
    expect(body).toEqual([" a", "-b", "+x", " c"]);
  });

  it("describes binary files, links, additions and deletions", () => {
    expect(unifiedDiff({ path: "x.bin", before: Buffer.from([0, 1]), after: Buffer.from([0, 2, 3]) })).toContain(
      "Binary files differ (2 → 3 bytes)",
    );
    expect(unifiedDiff({ path: "l", link: "/etc/passwd" })).toContain('symbolic link to "/etc/passwd"');
    expect(unifiedDiff({ path: "new.ts", after: Buffer.from("x\n") })).toContain("--- /dev/null\n+++ b/new.ts\n@@ -0,0 +1,1 @@\n+x\n");
    expect(unifiedDiff({ path: "old.ts", before: Buffer.from("x\n") })).toContain("--- a/old.ts\n+++ /dev/null\n@@ -1,1 +0,0 @@\n-x\n");
    expect(unifiedDiff({ path: "odd\nname", after: Buffer.from("") })).toContain("+++ b/odd\\nname");
  });
});

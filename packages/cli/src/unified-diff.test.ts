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

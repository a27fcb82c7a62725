import { posix } from "node:path";
import fc from "fast-check";
import { hostilePath } from "../test/arbitraries.js";
import { describe, expect, it } from "vitest";
import { isPathWithin, normalizeRepoPath } from "./repo-path.js";

describe("normalizeRepoPath", () => {
  it.each([
    ["src/routes/user.ts", "src/routes/user.ts"],
    ["./src//routes/./user.ts", "src/routes/user.ts"],
    ["src\\routes\\user.ts", "src/routes/user.ts"],
    ["src/middleware/", "src/middleware"],
    ["src/../src/a.ts", "src/a.ts"],
    [".", "."],
    ["./", "."],
  ])("normalizes %j to %j", (input, output) => {
    expect(normalizeRepoPath(input)).toEqual({ ok: true, path: output });
  });

  it.each([
    ["../x", "climbs above the repo root"],
    ["src/../../x", "climbs above the repo root"],
    ["..\\..\\etc\\passwd", "climbs above the repo root"],
    ["/etc/passwd", "is absolute; give it relative to the repo root"],
    ["C:\\Windows", "is absolute; give it relative to the repo root"],
    ["\\\\server\\share", "is absolute; give it relative to the repo root"],
    ["src\u2215..\u2215..\u2215x", "contains a Unicode look-alike of '/', '\\' or '.'"],
    ["\uFF0E\uFF0E/x", "contains a Unicode look-alike of '/', '\\' or '.'"],
    ["src/\u0000", "contains a control character"],
    ["", "is empty"],
  ])("refuses %j: %s", (input, reason) => {
    expect(normalizeRepoPath(input)).toEqual({ ok: false, reason });
  });

  it("never yields a path that leaves the root, and is idempotent", () => {
    fc.assert(
      fc.property(hostilePath, (input) => {
        const result = normalizeRepoPath(input);
        if (!result.ok) return;
        const resolved = posix.resolve("/repo", result.path);
        expect(resolved === "/repo" || resolved.startsWith("/repo/")).toBe(true);
        expect(result.path.split("/")).not.toContain("..");
        expect(result.path).not.toMatch(/\\|\/\/|^\//);
        expect(normalizeRepoPath(result.path)).toEqual(result);
      }),
      { numRuns: 5000 },
    );
  });

  it("counts only real separators and dots: a compatibility character that is none passes, one that hides a dot does not", () => {
    // U+FB01 (the "fi" ligature) grows under NFKC but holds no separator: a plain name.
    expect(normalizeRepoPath("src/\uFB01le.ts")).toEqual({ ok: true, path: "src/\uFB01le.ts" });
    // U+2488 ("1." as one character) is in no look-alike list: only the count sees its dot.
    expect(normalizeRepoPath("a\u2488b")).toEqual({ ok: false, reason: "contains a Unicode look-alike of '/', '\\' or '.'" });
    // U+2100 ("a/c" as one character) hides a slash.
    expect(normalizeRepoPath("x\u2100y")).toEqual({ ok: false, reason: "contains a Unicode look-alike of '/', '\\' or '.'" });
  });

  it("refuses every control character by default, and only NUL with allowControl", () => {
    expect(normalizeRepoPath("a\nb")).toEqual({ ok: false, reason: "contains a control character" });
    expect(normalizeRepoPath("a\nb", { allowControl: true })).toEqual({ ok: true, path: "a\nb" });
    expect(normalizeRepoPath("a\u0000b", { allowControl: true })).toEqual({ ok: false, reason: "contains a control character" });
  });

  it("takes a path of 4096 characters and refuses a longer one", () => {
    expect(normalizeRepoPath("a".repeat(4096))).toEqual({ ok: true, path: "a".repeat(4096) });
    expect(normalizeRepoPath("a".repeat(4097))).toEqual({ ok: false, reason: "is longer than 4096 characters" });
  });

  it("isPathWithin compares whole segments", () => {
    expect(isPathWithin("src/middleware/a.ts", "src/middleware")).toBe(true);
    expect(isPathWithin("src/middleware-evil/a.ts", "src/middleware")).toBe(false);
    expect(isPathWithin("anything", ".")).toBe(true);
  });
});

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

  it("isPathWithin compares whole segments", () => {
    expect(isPathWithin("src/middleware/a.ts", "src/middleware")).toBe(true);
    expect(isPathWithin("src/middleware-evil/a.ts", "src/middleware")).toBe(false);
    expect(isPathWithin("anything", ".")).toBe(true);
  });
});

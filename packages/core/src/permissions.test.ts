import { posix } from "node:path";
import { createTempDir, type TempDir } from "@bulkhead/test-utils";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTaskSpec } from "./parse-task-spec.js";
import { hostilePath } from "../test/arbitraries.js";
import { normalizeRepoPath } from "./repo-path.js";
import { resolveScope, type ResolvedScope } from "./resolve-scope.js";

describe("canRead and canWrite cannot be escaped", () => {
  let dir: TempDir;
  let scope: ResolvedScope;

  beforeAll(async () => {
    dir = createTempDir();
    dir.write({ "src/middleware/auth.ts": "a\n", "src/routes/admin.ts": "b\n", "src/routes/user.ts": "c\n" });
    const spec = parseTaskSpec(
      JSON.stringify({
        task: "t",
        context_scope: {
          repos: [{ name: "api", paths: ["src/middleware", "src/routes/user.ts"], exclude: ["src/routes/admin.ts"] }],
          max_files: 10,
          max_tokens: 1000,
        },
        ownership: { primary_repo: "api", allowed_cross_repo_reads: ["types"] },
      }),
    );
    scope = await resolveScope(spec, { repos: { api: dir.path }, cache: false });
  });
  afterAll(() => dir.remove());

  const insideScope = (path: string) => {
    const resolved = posix.resolve("/repo", path);
    return resolved.startsWith("/repo/src/middleware/") || resolved === "/repo/src/middleware" || resolved === "/repo/src/routes/user.ts";
  };

  it("a writable path always lands inside the scope, whatever it is made of", () => {
    fc.assert(
      fc.property(hostilePath, (input) => {
        if (!scope.canWrite("api", input)) return;
        const normalized = normalizeRepoPath(input);
        expect(normalized.ok).toBe(true);
        if (!normalized.ok) return;
        expect(insideScope(normalized.path)).toBe(true);
        expect(normalized.path.split("/").map((segment) => segment.toLowerCase())).not.toContain(".git");
        expect(posix.resolve("/repo", input.replaceAll("\\", "/")).startsWith("/repo/src/")).toBe(true);
      }),
      { numRuns: 5000 },
    );
  });

  it("an escape prefixed to a scope path is never readable or writable", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("../", "..\\", "/", "src/../../", "src/middleware/../../../", "\u2215", "\uFF0E\uFF0E/"),
        fc.constantFrom("src/middleware/a.ts", "api/src/middleware/a.ts", "etc/passwd"),
        (escape, rest) => {
          expect(scope.canWrite("api", `${escape}${rest}`)).toBe(false);
          expect(scope.canRead("api", `${escape}${rest}`)).toBe(false);
        },
      ),
    );
  });

  it("a repo outside the scope and the allowed reads is never readable", () => {
    fc.assert(
      fc.property(hostilePath, (input) => {
        expect(scope.canRead("frontend", input)).toBe(false);
        expect(scope.canWrite("types", input)).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it("the excluded file stays excluded under every spelling", () => {
    for (const spelling of [
      "src/routes/admin.ts",
      "./src/routes/admin.ts",
      "src//routes/admin.ts",
      "src\\routes\\admin.ts",
      "src/middleware/../routes/admin.ts",
      "src/routes/./admin.ts",
    ]) {
      expect(scope.canRead("api", spelling)).toBe(false);
      expect(scope.canWrite("api", spelling)).toBe(false);
    }
    expect(scope.canRead("api", "src/routes/user.ts")).toBe(true);
  });
});

import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { createTempDir, git, initRepo, type TempDir } from "@bulkhead/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTaskSpec } from "./parse-task-spec.js";
import { resolveScope } from "./resolve-scope.js";
import { createScopeCache } from "./scope-cache.js";
import { ScopeLimitError } from "./scope-limit-error.js";
import type { TokenCounter } from "./token-counter.js";

function spec({
  paths,
  exclude = [],
  maxFiles = 100,
  maxTokens = 100_000,
}: {
  paths: string[];
  exclude?: string[];
  maxFiles?: number;
  maxTokens?: number;
}) {
  return parseTaskSpec(
    JSON.stringify({
      task: "t",
      context_scope: { repos: [{ name: "backend-api", paths, exclude }], max_files: maxFiles, max_tokens: maxTokens },
      ownership: { primary_repo: "backend-api", allowed_cross_repo_reads: ["shared-types"] },
    }),
  );
}

/** Counts words and how often it was asked. */
function countingCounter(): TokenCounter & { calls: number } {
  const counter = {
    name: "words",
    estimated: false,
    calls: 0,
    count(text: string) {
      counter.calls++;
      return text.split(/\s+/).filter(Boolean).length;
    },
  };
  return counter;
}

/** A committed repo shaped like vercel/ai's: two directory links to skills/, a file link to AGENTS.md. */
async function withLinkedRepo(run: (repo: string) => Promise<void>): Promise<void> {
  const temp = createTempDir();
  try {
    const repo = join(temp.path, "linked");
    initRepo(repo, { "AGENTS.md": "# agents\n", "skills/review/SKILL.md": "review the diff\n", "skills/test/SKILL.md": "run the tests\n" });
    mkdirSync(join(repo, ".claude"));
    mkdirSync(join(repo, ".agents"));
    symlinkSync("../skills", join(repo, ".claude/skills"));
    symlinkSync("../skills", join(repo, ".agents/skills"));
    symlinkSync("AGENTS.md", join(repo, "CLAUDE.md"));
    git(repo, ["add", "--all"]);
    git(repo, ["commit", "--quiet", "--message", "links"]);
    await run(repo);
  } finally {
    temp.remove();
  }
}

describe("resolveScope over a real tree", () => {
  let dir: TempDir;
  let repo: string;

  beforeAll(() => {
    dir = createTempDir();
    repo = join(dir.path, "backend-api");
    initRepo(repo, {
      ".gitignore": "dist/\n*.log\n!keep.log\n",
      "src/routes/user.ts": "export const user = 1;\n",
      "src/routes/admin.ts": "export const admin = 1;\n",
      "src/middleware/auth.ts": "export function auth() { return true; }\n",
      "src/middleware/nested/deep/limits.ts": "export const limit = 100;\n",
      "src/middleware/.gitignore": "local/\n",
      "src/middleware/keep.log": "kept despite *.log\n",
      "lib/util.ts": "export const util = 1;\n",
      "test/a.test.ts": "test a\n",
      "test/b.test.ts": "test b\n",
      "test/helpers/c.test.ts": "test c\n",
    });
    dir.write({
      "backend-api/src/middleware/generated.log": "ignored\n",
      "backend-api/src/middleware/local/secret.ts": "ignored by the nested .gitignore\n",
      "backend-api/dist/bundle.js": "ignored\n",
      "backend-api/src/middleware/logo.png": new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x00, 0x01, 0x02]),
      "outside/secret.txt": "outside the repo\n",
    });
    symlinkSync("../routes/user.ts", join(repo, "src/middleware/link-inside.ts"));
    symlinkSync(join(dir.path, "outside/secret.txt"), join(repo, "src/middleware/link-outside.ts"));
    symlinkSync("../../lib", join(repo, "src/middleware/link-dir"));
    symlinkSync("../routes", join(repo, "src/middleware/link-routes"));
    symlinkSync("nowhere.ts", join(repo, "src/middleware/broken.ts"));
    symlinkSync("../..", join(repo, "src/middleware/nested/loop"));
  });
  afterAll(() => dir.remove());

  it("expands files, directories and globs; exclude wins; leaves out .git and ignored files", async () => {
    const scope = await resolveScope(
      spec({
        paths: ["src/routes/user.ts", "src/middleware/", "test/**/*.test.ts", "missing.ts", "docs/*.md"],
        exclude: ["src/routes/admin.ts", "test/b.test.ts"],
      }),
      { repos: { "backend-api": repo }, cache: false },
    );
    expect(scope.files.map((file) => file.path)).toEqual([
      "src/middleware/.gitignore",
      "src/middleware/auth.ts",
      "src/middleware/keep.log",
      // Links (link-dir, link-inside.ts, link-routes, nested/loop) are reported, not read or walked.
      "src/middleware/nested/deep/limits.ts",
      "src/routes/user.ts",
      "test/a.test.ts",
      "test/helpers/c.test.ts",
    ]);
    expect(scope.skipped).toEqual([
      { repo: "backend-api", path: "src/middleware/broken.ts", reason: "broken-symlink" },
      { repo: "backend-api", path: "src/middleware/logo.png", reason: "binary" },
    ]);
    expect(scope.refused).toEqual([
      {
        repo: "backend-api",
        path: "src/middleware/link-outside.ts",
        reason: `symlink points outside the repo (to ${join(dir.path, "outside/secret.txt")})`,
      },
    ]);
    expect(scope.links).toEqual([
      { repo: "backend-api", path: "src/middleware/link-dir", target: "lib", kind: "directory", walked: false },
      { repo: "backend-api", path: "src/middleware/link-inside.ts", target: "src/routes/user.ts", kind: "file", walked: false },
      { repo: "backend-api", path: "src/middleware/link-routes", target: "src/routes", kind: "directory", walked: false },
      { repo: "backend-api", path: "src/middleware/nested/loop", target: "src", kind: "directory", walked: false },
    ]);
    // A missing file in a directory that exists is one the task creates; a glob that matches nothing is a mistake.
    expect(scope.violations.map((violation) => violation.message)).toEqual([
      'path "docs/*.md" in repo "backend-api" matches no file: fix or remove it',
    ]);
    expect(scope.toCreate).toEqual([{ repo: "backend-api", path: "missing.ts" }]);
    const auth = scope.files.find((file) => file.path === "src/middleware/auth.ts")!;
    expect(auth).toEqual({ repo: "backend-api", path: "src/middleware/auth.ts", bytes: 40, tokens: 10 });
    expect(scope.estimated).toBe(true);
    expect(scope.totals.files).toBe(7);
  });

  it("names files to create: marked, not counted, within the limits; a missing directory is still a mistake unless declared", async () => {
    const scope = await resolveScope(
      spec({ paths: ["src/routes/user.ts", "src/middleware/rate-limit.ts", "src/newmod/index.ts"], maxFiles: 1 }),
      {
        repos: { "backend-api": repo },
        cache: false,
      },
    );
    // The limits count the one existing file: max_files 1 holds.
    expect(scope.totals.files).toBe(1);
    expect(scope.toCreate).toEqual([{ repo: "backend-api", path: "src/middleware/rate-limit.ts" }]);
    expect(scope.violations).toEqual([expect.objectContaining({ kind: "path-not-found", path: "src/newmod/index.ts" })]);
    expect(scope.canWrite("backend-api", "src/middleware/rate-limit.ts")).toBe(true);
    // Declared in expected_files as created, a file in a new directory is one to create too.
    const declared = parseTaskSpec(
      JSON.stringify({
        task: "t",
        context_scope: {
          repos: [{ name: "backend-api", paths: ["src/newmod/index.ts", "nowhere/deeper"] }],
          max_files: 1,
          max_tokens: 100,
        },
        ownership: { primary_repo: "backend-api" },
        expected_files: [{ path: "src/newmod/index.ts", change: "create" }],
      }),
    );
    const created = await resolveScope(declared, { repos: { "backend-api": repo }, cache: false });
    expect(created.toCreate).toEqual([{ repo: "backend-api", path: "src/newmod/index.ts" }]);
    // Not declared, and under a directory that does not exist: still a mistake.
    expect(created.violations.map((violation) => violation.kind === "path-not-found" && violation.path)).toEqual(["nowhere/deeper"]);
  });

  it("agrees with git about what is ignored", async () => {
    const scope = await resolveScope(spec({ paths: ["."] }), { repos: { "backend-api": repo }, cache: false });
    const ours = new Set(scope.files.map((file) => file.path).filter((path) => !path.includes("link-")));
    const symlinks = new Set(
      git(repo, ["ls-files", "-s"])
        .split("\n")
        .filter((line) => line.startsWith("120000")),
    );
    expect(symlinks.size).toBe(0);
    const theirs = git(repo, ["ls-files", "--cached", "--others", "--exclude-standard"])
      .split("\n")
      .filter(
        (path) =>
          !path.includes("link-") && !path.includes("loop") && path !== "src/middleware/broken.ts" && path !== "src/middleware/logo.png",
      );
    expect([...ours].sort()).toEqual(theirs.sort());
  });

  it("keeps links as links, like git: a file reached through a directory link is counted once", () =>
    withLinkedRepo(async (linked) => {
      const linkSpec = parseTaskSpec(
        JSON.stringify({
          task: "t",
          context_scope: { repos: [{ name: "linked", paths: ["."] }], max_files: 100, max_tokens: 100_000 },
          ownership: { primary_repo: "linked" },
        }),
      );
      const scope = await resolveScope(linkSpec, { repos: { linked }, cache: false });
      const tracked = git(linked, ["ls-files", "-s"]).trim().split("\n");
      const regular = tracked.filter((line) => !line.startsWith("120000")).map((line) => line.split("\t")[1]);
      const links = tracked.filter((line) => line.startsWith("120000")).map((line) => line.split("\t")[1]);
      expect(scope.files.map((file) => file.path)).toEqual(regular.sort());
      expect(scope.links.map((link) => link.path)).toEqual(links.sort());
      expect(scope.links.find((link) => link.path === ".claude/skills")).toEqual({
        repo: "linked",
        path: ".claude/skills",
        target: "skills",
        kind: "directory",
        walked: false,
      });
    }));

  it("counts with the given counter and reuses counts by content", async () => {
    const counter = countingCounter();
    const cache = createScopeCache();
    const options = { repos: { "backend-api": repo }, counter, cache };
    const first = await resolveScope(spec({ paths: ["src/routes", "lib"] }), options);
    expect(first.estimated).toBe(false);
    expect(first.counter).toBe("words");
    expect(first.files.map((file) => [file.path, file.tokens])).toEqual([
      ["lib/util.ts", 5],
      ["src/routes/admin.ts", 5],
      ["src/routes/user.ts", 5],
    ]);
    expect(counter.calls).toBe(3);
    await resolveScope(spec({ paths: ["src/routes", "lib"] }), options);
    expect(counter.calls).toBe(3);
    writeFileSync(join(repo, "lib/util.ts"), "export const util = 2; // changed\n");
    const third = await resolveScope(spec({ paths: ["src/routes", "lib"] }), options);
    expect(counter.calls).toBe(4);
    expect(third.files[0]).toMatchObject({ path: "lib/util.ts", tokens: 7 });
    writeFileSync(join(repo, "lib/util.ts"), "export const util = 1;\n");
    await resolveScope(spec({ paths: ["src/routes", "lib"] }), options);
    expect(counter.calls).toBe(4);
  });

  it("reports limits with advice on what to narrow", async () => {
    const scope = await resolveScope(spec({ paths: ["."], maxFiles: 3, maxTokens: 20 }), { repos: { "backend-api": repo }, cache: false });
    expect(scope.violations.map((violation) => violation.kind)).toEqual(["max-files", "max-tokens"]);
    let error: ScopeLimitError | undefined;
    try {
      scope.assertWithinLimits();
    } catch (caught) {
      error = caught as ScopeLimitError;
    }
    expect(error).toBeInstanceOf(ScopeLimitError);
    expect(error!.code).toBe("SCOPE_LIMIT");
    expect(error!.message.split("\n").slice(0, 2)).toEqual([
      `scope resolves to ${scope.totals.files} files, over max_files 3: narrow paths or raise the limit`,
      `scope holds ${scope.totals.tokens} tokens, over max_tokens 20: narrow paths, add excludes or raise the limit`,
    ]);
    expect(error!.largestDirectories[0]).toMatchObject({ repo: "backend-api", path: "src" });
    expect(error!.message).toMatch(/largest directories: backend-api\/src \(\d+ tokens, \d+ files\)/);
    expect(error!.largestFiles).toHaveLength(5);
    expect(error!.largestFiles[0]!.tokens).toBeGreaterThanOrEqual(error!.largestFiles[4]!.tokens);
  });

  it("answers canRead and canWrite for the scope, cross-repo reads and symlinks", async () => {
    const scope = await resolveScope(spec({ paths: ["src/middleware", "src/routes/user.ts"], exclude: ["src/routes/admin.ts"] }), {
      repos: { "backend-api": repo },
    });
    expect(scope.canWrite("backend-api", "src/middleware/rate-limit.ts")).toBe(true);
    expect(scope.canWrite("backend-api", "src\\middleware\\rate-limit.ts")).toBe(true);
    expect(scope.canWrite("backend-api", "./src//middleware/x.ts")).toBe(true);
    expect(scope.canWrite("backend-api", join(repo, "src/middleware/x.ts"))).toBe(true);
    expect(scope.canWrite("backend-api", join(repo, "src/routes/admin.ts"))).toBe(false);
    expect(scope.canRead("backend-api", "/etc/passwd")).toBe(false);
    expect(scope.canWrite("backend-api", "src/routes/admin.ts")).toBe(false);
    expect(scope.canWrite("backend-api", "src/middleware/../routes/admin.ts")).toBe(false);
    expect(scope.canWrite("backend-api", "src/middleware/link-routes/admin.ts")).toBe(false);
    expect(scope.canRead("backend-api", "src/middleware/link-routes/admin.ts")).toBe(false);
    expect(scope.canWrite("backend-api", "src/middleware/link-dir/util.ts")).toBe(false);
    expect(scope.canRead("backend-api", "src/middleware/link-dir/util.ts")).toBe(true);
    expect(scope.canRead("backend-api", "src/middleware/link-outside.ts")).toBe(false);
    expect(scope.canWrite("backend-api", "src/middleware/.git/config")).toBe(false);
    expect(scope.canWrite("backend-api", "src/middleware\u2215x.ts")).toBe(false);
    expect(scope.canRead("shared-types", "src/index.ts")).toBe(true);
    expect(scope.canRead("shared-types", "../backend-api/src/routes/admin.ts")).toBe(false);
    expect(scope.canWrite("shared-types", "src/index.ts")).toBe(false);
    expect(scope.canRead("frontend", "src/app.ts")).toBe(false);
  });

  it("refuses a missing repo directory and an aborted signal with clear errors", async () => {
    await expect(resolveScope(spec({ paths: ["."] }), { repos: {} })).rejects.toThrow(
      'invalid options.repos: no directory for repo "backend-api": pass repos: { "backend-api": "<dir>" }',
    );
    await expect(resolveScope(spec({ paths: ["."] }), { repos: { "backend-api": join(dir.path, "nope") } })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    await expect(
      resolveScope(spec({ paths: ["."] }), { repos: { "backend-api": repo }, abortSignal: AbortSignal.abort() }),
    ).rejects.toMatchObject({ code: "ABORTED" });
    await expect(resolveScope(spec({ paths: ["."] }), { repos: { "backend-api": repo }, maxFileBytes: 0 })).rejects.toThrow(
      "invalid options: maxFileBytes:",
    );
  });
});

describe("resolveScope and .gitignore, against git", () => {
  // Rules at several levels: directory rules, negations, a directory re-included by a deeper
  // .gitignore (git then judges its files by their own names), anchored and ** patterns.
  const patterns = ["build/", "!build/", "*.log", "!keep.log", "/top.ts", "a/", "!a/", "**/gen/", "*.tmp", "!*.tmp", "x*", "b/c/", "c"];
  const names = ["a", "b", "build", "gen", "c"];
  const files = ["x.ts", "keep.log", "y.log", "top.ts", "z.tmp"];
  const directory = fc.array(fc.constantFrom(...names), { minLength: 0, maxLength: 3 }).map((parts) => parts.join("/"));
  const tree = fc.record({
    files: fc.array(fc.tuple(directory, fc.constantFrom(...files)), { minLength: 1, maxLength: 14 }),
    ignores: fc.array(fc.tuple(directory, fc.array(fc.constantFrom(...patterns), { minLength: 1, maxLength: 4 })), { maxLength: 4 }),
  });

  it("property: lists exactly the files git ls-files --others --exclude-standard lists", async () => {
    await fc.assert(
      fc.asyncProperty(tree, async ({ files: placed, ignores }) => {
        const temp = createTempDir();
        try {
          const root = join(temp.path, "repo");
          git(temp.path, ["init", "--quiet", root]);
          for (const [dir, name] of placed) {
            mkdirSync(join(root, dir), { recursive: true });
            writeFileSync(join(root, dir, name), `${dir}/${name}\n`);
          }
          for (const [dir, rules] of ignores) {
            mkdirSync(join(root, dir), { recursive: true });
            writeFileSync(join(root, dir, ".gitignore"), `${rules.join("\n")}\n`);
          }
          const scope = await resolveScope(spec({ paths: ["."], maxFiles: 1000 }), { repos: { "backend-api": root }, cache: false });
          const theirs = git(root, ["ls-files", "--others", "--exclude-standard"]).split("\n").filter(Boolean).sort();
          expect(scope.files.map((file) => file.path)).toEqual(theirs);
        } finally {
          temp.remove();
        }
      }),
      {
        numRuns: 60,
        // git enters a/build (re-included below) and judges a/build/x.ts by its own name.
        examples: [
          [
            {
              files: [
                ["a/build", "x.ts"],
                ["build", "x.ts"],
              ],
              ignores: [
                ["", ["build/"]],
                ["a", ["!build/"]],
              ],
            },
          ],
        ],
      },
    );
  });
});

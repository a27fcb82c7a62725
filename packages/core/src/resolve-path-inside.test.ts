import { mkdirSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { createTempDir } from "@bulkhead/test-utils";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { resolvePathInside } from "./resolve-path-inside.js";
import { resolveScope } from "./resolve-scope.js";
import { parseTaskSpec } from "./parse-task-spec.js";

const names = ["a", "b", "c", "..", "."];

describe("resolvePathInside", () => {
  it("refuses a link in the prefix that leaves the root, and one anywhere under 'refuse'", async () => {
    await using dir = createTempDir();
    const root = join(dir.path, "repo");
    mkdirSync(join(root, "real"), { recursive: true });
    writeFileSync(join(root, "real/x.txt"), "x");
    symlinkSync("/etc", join(root, "etclink"));
    symlinkSync("real", join(root, "inlink"));
    symlinkSync("..", join(root, "real/up"));
    symlinkSync("loop", join(root, "loop"));
    expect(resolvePathInside(root, "etclink/passwd", { links: "inside" })).toMatchObject({
      ok: false,
      reason: expect.stringContaining("leaves the root"),
    });
    expect(resolvePathInside(root, "etclink/passwd", { links: "refuse" })).toMatchObject({
      ok: false,
      reason: 'is beyond a symbolic link ("etclink")',
    });
    expect(resolvePathInside(root, "inlink/x.txt", { links: "inside" })).toMatchObject({
      ok: true,
      path: "inlink/x.txt",
      real: "real/x.txt",
    });
    expect(resolvePathInside(root, "inlink/x.txt", { links: "refuse" })).toMatchObject({ ok: false });
    expect(resolvePathInside(root, "real/up/real/x.txt", { links: "inside" })).toMatchObject({ ok: true, real: "real/x.txt" });
    expect(resolvePathInside(root, "real/up/real/up", { links: "inside" })).toMatchObject({
      ok: true,
      real: ".",
      absolute: realpathSync(root),
    });
    expect(resolvePathInside(root, "real/up/up", { links: "inside" })).toMatchObject({ ok: true, real: "up", stats: undefined });
    expect(resolvePathInside(root, "loop/x", { links: "inside" })).toMatchObject({ ok: false, reason: "has a loop of symbolic links" });
    expect(resolvePathInside(root, "etclink", { links: "refuse" })).toMatchObject({ ok: true, real: "etclink" });
    expect(resolvePathInside(root, "missing/../../x", { links: "inside" })).toMatchObject({ ok: false });
    expect(resolvePathInside(root, "new\nline", { links: "refuse" })).toMatchObject({ ok: true, stats: undefined });
  });

  it("property: whatever links a tree holds, a resolved path is inside the root, and agrees with the kernel", async () => {
    await using dir = createTempDir();
    let round = 0;
    const outside = join(dir.path, "outside");
    mkdirSync(join(outside, "a"), { recursive: true });
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.array(fc.constantFrom("a", "b", "c"), { minLength: 1, maxLength: 3 }),
            fc.constantFrom("dir", "file", "up", "upup", "abs-out", "abs-in", "self", "sibling"),
          ),
          { maxLength: 8 },
        ),
        fc.array(fc.array(fc.constantFrom(...names), { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 10 }),
        (entries, queries) => {
          const root = join(dir.path, `tree-${round++}`);
          mkdirSync(root);
          const realRoot = realpathSync(root);
          for (const [parts, kind] of entries) {
            const path = join(root, ...parts);
            try {
              mkdirSync(join(path, ".."), { recursive: true });
              if (kind === "dir") mkdirSync(path);
              else if (kind === "file") writeFileSync(path, "x");
              else if (kind === "up") symlinkSync("..", path);
              else if (kind === "upup") symlinkSync("../..", path);
              else if (kind === "abs-out") symlinkSync(outside, path);
              else if (kind === "abs-in") symlinkSync(realRoot, path);
              else if (kind === "self") symlinkSync(parts.at(-1)!, path);
              else symlinkSync("a", path);
            } catch {
              // The path exists already, or its parent is a file: that tree is as good as any.
            }
          }
          for (const query of queries) {
            const path = query.join("/");
            for (const links of ["inside", "refuse"] as const) {
              const resolved = resolvePathInside(root, path, { links });
              if (!resolved.ok) continue;
              const inside = relative(realRoot, resolved.absolute);
              expect(inside.startsWith("..")).toBe(false);
              if (resolved.stats && links === "inside") {
                // Fully resolved: the kernel finds the very same place, and it is inside.
                expect(realpathSync(resolved.absolute)).toBe(resolved.absolute);
              }
              if (resolved.stats && links === "refuse") {
                // No link was followed on the way: only the last component may be one.
                const parent = resolved.absolute.slice(0, resolved.absolute.lastIndexOf("/"));
                expect(realpathSync(parent)).toBe(parent);
              }
            }
            // And the other way round: a path the kernel resolves outside the root is never accepted.
            let kernel: string | undefined;
            try {
              kernel = realpathSync(join(root, path));
            } catch {
              kernel = undefined;
            }
            if (kernel !== undefined && relative(realRoot, kernel).startsWith("..") && !query.includes("..")) {
              expect(resolvePathInside(root, path, { links: "inside" }).ok).toBe(false);
            }
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe("scope through hostile links", () => {
  const spec = (paths: string[]) =>
    parseTaskSpec(`
task: t
context_scope:
  repos:
    - name: app
      paths: ${JSON.stringify(paths)}
  max_files: 1000
  max_tokens: 1000000
ownership:
  primary_repo: app
`);

  it("a scope path through etclink (-> /etc) is refused, never read; canRead and canWrite say no", async () => {
    await using dir = createTempDir();
    const repo = join(dir.path, "app");
    mkdirSync(join(repo, "src"), { recursive: true });
    writeFileSync(join(repo, "src/a.ts"), "a\n");
    symlinkSync("/etc", join(repo, "etclink"));
    symlinkSync("/etc", join(repo, "src/etc"));
    const scope = await resolveScope(spec(["etclink/passwd", "etclink/*.conf", "src/"]), { repos: { app: repo }, cache: false });
    expect(scope.files.map((file) => file.path)).toEqual(["src/a.ts"]);
    expect(scope.refused.map((entry) => entry.path)).toEqual(["etclink/*.conf", "etclink/passwd", "src/etc"]);
    for (const check of [scope.canRead, scope.canWrite]) {
      expect(check("app", "etclink/passwd")).toBe(false);
      expect(check("app", "src/etc/passwd")).toBe(false);
      expect(check("app", "src/a.ts")).toBe(true);
    }
  });

  it("walks a link loop once: loop -> .. and two links to one directory add no file twice", async () => {
    await using dir = createTempDir();
    const repo = join(dir.path, "app");
    mkdirSync(join(repo, "src/deep"), { recursive: true });
    writeFileSync(join(repo, "src/deep/x.ts"), "x\n");
    symlinkSync("..", join(repo, "src/deep/loop"));
    symlinkSync("deep", join(repo, "src/again"));
    symlinkSync("../../src", join(repo, "src/deep/src-again"));
    const scope = await resolveScope(spec(["src"]), { repos: { app: repo }, cache: false });
    expect(scope.files.map((file) => file.path)).toEqual(["src/deep/x.ts"]);
    expect(scope.links).toEqual([
      { repo: "app", path: "src/again", target: "src/deep", kind: "directory", walked: false },
      { repo: "app", path: "src/deep/loop", target: "src", kind: "directory", walked: false },
      { repo: "app", path: "src/deep/src-again", target: "src", kind: "directory", walked: false },
    ]);
    expect(scope.canRead("app", "src/again/x.ts")).toBe(true);
    expect(scope.canRead("app", "src/deep/loop/deep/loop/deep/x.ts")).toBe(true);
  });
});

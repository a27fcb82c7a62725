// cloneRepo on a root host: the working tree is written by git running as the session user (no
// recursive chown), and a source that user cannot reach falls back to root's checkout + chown.
import { execFileSync } from "node:child_process";
import { chmodSync, lstatSync, mkdirSync, readdirSync, chownSync } from "node:fs";
import { join } from "node:path";
import { createTempDir, git, initRepo } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { cloneRepo, reachableBy } from "./clone-repos.js";

const files = Object.fromEntries(
  Array.from({ length: 50 }, (_, index) => [`src/d${index % 5}/f${index}.ts`, `export const v = ${index};\n`]),
);

/** Every entry under `path` whose owner is not `uid`. */
function notOwnedBy(path: string, uid: number): string[] {
  const found: string[] = [];
  const walk = (at: string) => {
    const stats = lstatSync(at);
    if (stats.uid !== uid) found.push(at);
    if (stats.isDirectory()) for (const name of readdirSync(at)) walk(join(at, name));
  };
  walk(path);
  return found;
}

describe.runIf(process.getuid?.() === 0)("cloneRepo as root", () => {
  it("checks out as the session user when it can reach the source and the workspace: every file is its own, git is clean", async () => {
    await using dir = createTempDir();
    // A temp directory is 0700: open it, as a user's source tree usually is.
    chmodSync(dir.path, 0o755);
    const source = join(dir.path, "api");
    initRepo(source, files);
    const workspace = join(dir.path, "workspace");
    mkdirSync(workspace);
    chownSync(workspace, 1000, 1000);
    const base = git(source, ["rev-parse", "HEAD"]);
    const target = join(workspace, "api");
    const result = await cloneRepo({ source, baseSha: base, branch: "bulkhead/s1", target, user: "1000:1000" });
    expect(result.checkedOutAs).toBe("session user");
    expect(notOwnedBy(target, 1000)).toEqual([]);
    expect(lstatSync(join(target, "src/d1/f1.ts")).gid).toBe(1000);
    // The session user's own git sees a clean checkout on the branch, borrowing the source's objects.
    const asUser = (args: string[]) =>
      execFileSync("git", args, { cwd: target, uid: 1000, gid: 1000, encoding: "utf8", env: { ...process.env, HOME: target } }).trim();
    expect(asUser(["status", "--porcelain"])).toBe("");
    expect(asUser(["rev-parse", "--abbrev-ref", "HEAD"])).toBe("bulkhead/s1");
    expect(readdirSync(join(target, ".git", "objects")).sort()).toEqual(["info", "pack"]);
  });

  it("falls back to root's checkout and a chown when the session user cannot reach the source", async () => {
    await using dir = createTempDir();
    // Left 0700: the session user cannot search it, so its git could not read the objects.
    const source = join(dir.path, "api");
    initRepo(source, files);
    expect(reachableBy(join(source, ".git", "objects"), { uid: 1000, gid: 1000 }, "rx")).toBe(false);
    const target = join(dir.path, "clone");
    const result = await cloneRepo({ source, baseSha: git(source, ["rev-parse", "HEAD"]), branch: "b", target, user: "1000:1000" });
    expect(result.checkedOutAs).toBe("root, then chown");
    expect(notOwnedBy(target, 1000)).toEqual([]);
    expect(git(target, ["-c", "safe.directory=*", "status", "--porcelain"])).toBe("");
  });

  it("judges reach from every directory's mode bits", async () => {
    await using dir = createTempDir();
    const ids = { uid: 1000, gid: 1000 };
    const inner = join(dir.path, "a", "b");
    mkdirSync(inner, { recursive: true });
    chmodSync(dir.path, 0o755);
    expect(reachableBy(inner, ids, "rx")).toBe(true);
    expect(reachableBy(inner, ids, "wx")).toBe(false);
    chownSync(inner, 1000, 0);
    expect(reachableBy(inner, ids, "wx")).toBe(true);
    chmodSync(join(dir.path, "a"), 0o750);
    expect(reachableBy(inner, ids, "rx")).toBe(false);
    chownSync(join(dir.path, "a"), 0, 1000);
    expect(reachableBy(inner, ids, "rx")).toBe(true);
    expect(reachableBy(join(dir.path, "missing"), ids, "rx")).toBe(false);
  });
});

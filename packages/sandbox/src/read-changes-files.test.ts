// The two file primitives under readRepoChanges, on a real file system: a file is read only as a
// regular file, never through a link, up to a limit; a directory only through real directories.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTempDir } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { readFileNoFollow, realDirectory } from "./read-changes.js";

describe("readFileNoFollow", () => {
  it("reads a file's bytes and its executable bit", async () => {
    await using dir = createTempDir();
    writeFileSync(join(dir.path, "a.sh"), "echo hi\n");
    expect(readFileNoFollow(join(dir.path, "a.sh"), 1024)).toEqual({ bytes: Buffer.from("echo hi\n"), executable: false });
    chmodSync(join(dir.path, "a.sh"), 0o755);
    expect(readFileNoFollow(join(dir.path, "a.sh"), 1024).executable).toBe(true);
    writeFileSync(join(dir.path, "empty"), "");
    expect(readFileNoFollow(join(dir.path, "empty"), 0)).toEqual({ bytes: Buffer.alloc(0), executable: false });
  });

  it("reads a file of exactly maxBytes, and skips one a byte over", async () => {
    await using dir = createTempDir();
    writeFileSync(join(dir.path, "f"), "12345");
    expect(readFileNoFollow(join(dir.path, "f"), 5).bytes).toEqual(Buffer.from("12345"));
    expect(readFileNoFollow(join(dir.path, "f"), 4)).toEqual({ skipped: "is 5 bytes, over the 4-byte limit of a change set" });
  });

  it("never follows a link, and skips what is not a regular file", async () => {
    await using dir = createTempDir();
    writeFileSync(join(dir.path, "target"), "secret");
    symlinkSync(join(dir.path, "target"), join(dir.path, "link"));
    expect(readFileNoFollow(join(dir.path, "link"), 1024)).toEqual({ skipped: "became a link while read" });
    expect(readFileNoFollow(join(dir.path, "missing"), 1024)).toEqual({ skipped: "cannot be opened (ENOENT)" });
    execFileSync("mkfifo", [join(dir.path, "pipe")]);
    expect(readFileNoFollow(join(dir.path, "pipe"), 1024)).toEqual({ skipped: "is not a regular file" });
  });
});

describe("realDirectory", () => {
  it("resolves a path of real directories, and refuses a link, a file, '.' or '..' on the way", async () => {
    await using dir = createTempDir();
    mkdirSync(join(dir.path, "a", "b"), { recursive: true });
    writeFileSync(join(dir.path, "a", "file"), "");
    symlinkSync(join(dir.path, "a"), join(dir.path, "link"));
    const real = realpathSync(dir.path);
    expect(realDirectory(dir.path, "a/b")).toBe(join(real, "a", "b"));
    expect(realDirectory(dir.path, "")).toBe(real);
    expect(() => realDirectory(dir.path, "link/b")).toThrow("is not a directory (a link): it is never followed");
    expect(() => realDirectory(dir.path, "a/file")).toThrow("is not a directory (a file)");
    expect(() => realDirectory(dir.path, "a/../a")).toThrow('"." and ".." are not allowed');
    expect(() => realDirectory(dir.path, "./a")).toThrow('"." and ".." are not allowed');
  });
});

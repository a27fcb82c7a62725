import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTempDir } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { GitConflictError } from "./git-lead-errors.js";
import { withGitLock } from "./file-lock.js";

/** A pid that is certainly gone: a child that has exited. */
const deadPid = () => spawnSync(process.execPath, ["-e", "0"]).pid!;

/** Where withGitLock announces a lock before it makes it (one file per process). */
function announce(lockPath: string, pid: number, atMs: number): void {
  const owners = join(tmpdir(), "bulkhead-git-locks");
  mkdirSync(owners, { recursive: true });
  const owner = join(owners, `${createHash("sha1").update(lockPath).digest("hex")}.owner`);
  writeFileSync(`${owner}.pending.${pid}`, String(atMs));
}

describe("withGitLock", () => {
  it("breaks a lock whose lead died between making it and naming it (kill -9 in that window)", async () => {
    await using dir = createTempDir();
    const index = join(dir.path, "index");
    announce(`${index}.lock`, deadPid(), Date.now() - 1_000);
    writeFileSync(`${index}.lock`, "");
    // The old code waited out the timeout and failed: no owner record named this lock's inode.
    const result = await withGitLock(index, async () => "taken", { timeoutMs: 2_000 });
    expect(result).toBe("taken");
    expect(existsSync(`${index}.lock`)).toBe(false);
  });

  it("never breaks a lock made before a dead process's announcement (git's own lock)", async () => {
    await using dir = createTempDir();
    const index = join(dir.path, "index");
    writeFileSync(`${index}.lock`, "");
    // Announced well after the lock was made (its ctime): not the dead process's lock.
    announce(`${index}.lock`, deadPid(), Date.now() + 60_000);
    await expect(withGitLock(index, async () => "taken", { timeoutMs: 200 })).rejects.toThrow(GitConflictError);
    expect(existsSync(`${index}.lock`)).toBe(true);
  });

  it("never breaks a lock that a live process announced", async () => {
    await using dir = createTempDir();
    const index = join(dir.path, "index");
    announce(`${index}.lock`, deadPid(), Date.now() - 2_000);
    announce(`${index}.lock`, process.ppid, Date.now() - 1_000);
    writeFileSync(`${index}.lock`, "");
    await expect(withGitLock(index, async () => "taken", { timeoutMs: 200 })).rejects.toThrow(GitConflictError);
  });
});

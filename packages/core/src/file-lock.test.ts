import { existsSync, mkdirSync, readFileSync, renameSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTempDir } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { acquireFileLock, breakStaleLock, tryAcquireFileLock } from "./file-lock.js";

describe("the file lock", () => {
  it("breaks a stale lock only while it is still the lock that was judged, one contender at a time", async () => {
    await using dir = createTempDir();
    const lockPath = join(dir.path, "lead.lock");
    const judge = () => ({ text: readFileSync(lockPath, "utf8"), ino: statSync(lockPath).ino });
    const stale = JSON.stringify({ pid: 2 ** 22 + 1, token: 7, expiresAt: 0 });
    writeFileSync(lockPath, stale);
    const judged = judge();
    // Between judging and breaking, another contender broke it and took over: new content.
    writeFileSync(`${lockPath}.new`, JSON.stringify({ pid: process.pid, token: 8, expiresAt: Date.now() + 60_000 }));
    renameSync(`${lockPath}.new`, lockPath);
    expect(breakStaleLock(lockPath, judged)).toBe(true);
    expect(JSON.parse(readFileSync(lockPath, "utf8"))).toMatchObject({ token: 8 });
    // Same content, other file (a new lock written identically): left alone too.
    writeFileSync(lockPath, stale);
    const again = judge();
    writeFileSync(`${lockPath}.new`, stale);
    renameSync(`${lockPath}.new`, lockPath);
    expect(breakStaleLock(lockPath, again)).toBe(true);
    expect(existsSync(lockPath)).toBe(true);
    // Another contender is breaking it right now: back off, lock untouched.
    mkdirSync(`${lockPath}.break`);
    expect(breakStaleLock(lockPath, judge())).toBe(false);
    expect(existsSync(lockPath)).toBe(true);
    // That contender died holding the breaker: an old breaker is cleared, and the next try breaks the lock.
    utimesSync(`${lockPath}.break`, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    expect(breakStaleLock(lockPath, judge())).toBe(false);
    expect(breakStaleLock(lockPath, judge())).toBe(true);
    expect(existsSync(lockPath)).toBe(false);
    expect(existsSync(`${lockPath}.break`)).toBe(false);
  });

  it("takes over an empty lock left by a holder killed before filling it, within seconds rather than a lease", async () => {
    await using dir = createTempDir();
    const path = join(dir.path, "pause.lock");
    writeFileSync(path, "");
    // Fresh: it may be a live holder between creating and filling the file.
    expect(tryAcquireFileLock(path, { staleMs: 30_000 })).toBeUndefined();
    const past = new Date(Date.now() - 5_000);
    utimesSync(path, past, past);
    // The old rule waited out the whole 30 s lease, past withFileLock's 10 s timeout.
    const taken = tryAcquireFileLock(path, { staleMs: 30_000 });
    expect(taken).toBeDefined();
    expect(JSON.parse(readFileSync(path, "utf8")).pid).toBe(process.pid);
    await taken!.release();
  });

  it("takes over an expired lease; the old holder can neither renew nor release the new holder's lock", async () => {
    await using dir = createTempDir();
    const path = join(dir.path, "state.lock");
    const first = tryAcquireFileLock(path, { staleMs: 50 })!;
    expect(tryAcquireFileLock(path, { staleMs: 50 })).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = tryAcquireFileLock(path, { staleMs: 50 })!;
    expect(second).toBeDefined();
    expect(first.isHeld()).toBe(false);
    expect(first.renew()).toBe(false);
    first.release();
    expect(second.isHeld()).toBe(true);
    expect(second.renew()).toBe(true);
    second.release();
    expect(existsSync(path)).toBe(false);
    await expect(acquireFileLock(path, { timeoutMs: 0 })).resolves.toBeDefined();
  });
});

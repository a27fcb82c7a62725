import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { createTempDir } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { LeadFencedError } from "./git-lead-errors.js";
import { breakStaleLock, tryAcquireLeadLock } from "./lead-lock.js";

const run = promisify(execFile);
const contender = join(import.meta.dirname, "..", "test", "lock-contender.ts");

describe("the lead lock", () => {
  it("lets exactly one of many processes take over a stale lock, with a token of its own", async () => {
    await using dir = createTempDir();
    for (let round = 0; round < 1; round++) {
      const state = join(dir.path, `round-${round}`);
      await tryAcquireLeadLock(state).then((lock) => lock?.release());
      // A lead that died holding the lock (a pid that cannot exist) with fencing token 7.
      writeFileSync(join(state, "lead.lock"), JSON.stringify({ pid: 2 ** 22 + 1, token: 7, expiresAt: Date.now() + 60_000 }));
      writeFileSync(join(state, "fence"), "7");
      const startAt = Date.now() + 2500;
      const outputs = await Promise.all(
        Array.from({ length: 8 }, () =>
          run(process.execPath, ["--import", "tsx", contender, state, String(startAt), "8"], { cwd: join(import.meta.dirname, "..") }).then(
            ({ stdout }) => stdout,
          ),
        ),
      );
      expect(outputs.filter((output) => output !== "none")).toEqual(["8"]);
      expect(readFileSync(join(state, "fence"), "utf8")).toBe("8");
    }
  });

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

  it("keeps a live lead's lock, takes over an expired lease, and fences the old lead", async () => {
    await using dir = createTempDir();
    const first = await tryAcquireLeadLock(dir.path, { leaseMs: 200 });
    expect(first?.token).toBe(1);
    expect(await tryAcquireLeadLock(dir.path, { leaseMs: 200 })).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 300));
    // The first lead is alive but stopped renewing: its lease ran out.
    const second = await tryAcquireLeadLock(dir.path, { leaseMs: 200 });
    expect(second?.token).toBe(2);
    await expect(first!.assertCurrent()).rejects.toBeInstanceOf(LeadFencedError);
    await expect(first!.renew()).rejects.toBeInstanceOf(LeadFencedError);
    // A fenced lead's release leaves the new lead's lock alone.
    await first!.release();
    expect(JSON.parse(readFileSync(join(dir.path, "lead.lock"), "utf8"))).toMatchObject({ token: 2, pid: process.pid });
    await second!.release();
  });
});

import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { createTempDir } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { LeadFencedError } from "./git-lead-errors.js";
import { tryAcquireLeadLock } from "./lead-lock.js";

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
    expect(JSON.parse(readFileSync(join(dir.path, "lead.lock"), "utf8"))).toMatchObject({ pid: process.pid });
    await expect(second!.renew()).resolves.toBeUndefined();
    await second!.release();
  });
});

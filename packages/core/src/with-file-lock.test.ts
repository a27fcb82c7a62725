import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { createTempDir } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { withFileLock } from "./with-file-lock.js";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("withFileLock", () => {
  it("serializes read-modify-write across processes: 4 processes × 50 increments make 200", async () => {
    await using dir = createTempDir();
    const counter = join(dir.path, "counter");
    writeFileSync(counter, "0");
    const worker = join(import.meta.dirname, "..", "test", "lock-worker.ts");
    await Promise.all(
      Array.from({ length: 4 }, () =>
        run(process.execPath, ["--import", "tsx", worker, counter, "50"], { cwd: join(import.meta.dirname, "..") }),
      ),
    );
    expect(readFileSync(counter, "utf8")).toBe("200");
    expect(existsSync(`${counter}.lock`)).toBe(false);
  });

  it("takes over a lock whose process is gone", async () => {
    await using dir = createTempDir();
    const lock = join(dir.path, "state.lock");
    mkdirSync(lock);
    writeFileSync(join(lock, "owner.json"), JSON.stringify({ pid: 2 ** 22 + 1, token: "dead", at: Date.now() }));
    expect(await withFileLock(lock, async () => "taken", { timeoutMs: 2000 })).toBe("taken");
    expect(existsSync(lock)).toBe(false);
  });

  it("a holder whose lock was broken as stale does not remove the next holder's lock on release", async () => {
    await using dir = createTempDir();
    const lock = join(dir.path, "state.lock");
    const order: string[] = [];
    // A holds the lock for 400 ms; B thinks 100 ms is stale and takes it over while A still works.
    const a = withFileLock(lock, async () => {
      order.push("a start");
      await sleep(400);
      order.push("a end");
    });
    await sleep(50);
    const b = withFileLock(
      lock,
      async () => {
        order.push("b start");
        await sleep(600);
        order.push("b end");
      },
      { staleMs: 100 },
    );
    // C arrives after A released: B still holds the lock, so C must wait for B.
    await sleep(500);
    const c = withFileLock(lock, async () => void order.push("c start"));
    await Promise.all([a, b, c]);
    expect(order).toEqual(["a start", "b start", "a end", "b end", "c start"]);
  });
});

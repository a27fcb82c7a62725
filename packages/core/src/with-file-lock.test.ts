import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
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
    writeFileSync(lock, JSON.stringify({ pid: 2 ** 22 + 1, token: "dead", at: Date.now(), expiresAt: Date.now() + 60_000 }));
    expect(await withFileLock(lock, async () => "taken", { timeoutMs: 2000 })).toBe("taken");
    expect(existsSync(lock)).toBe(false);
  });

  it("keeps its lease while work runs longer than staleMs: nobody takes it over meanwhile", async () => {
    await using dir = createTempDir();
    const lock = join(dir.path, "state.lock");
    const order: string[] = [];
    const a = withFileLock(
      lock,
      async () => {
        order.push("a start");
        await sleep(400);
        order.push("a end");
      },
      { staleMs: 100 },
    );
    await sleep(50);
    const b = withFileLock(lock, async () => void order.push("b start"), { staleMs: 100 });
    await Promise.all([a, b]);
    expect(order).toEqual(["a start", "a end", "b start"]);
  });
});

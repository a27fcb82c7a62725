import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { BUDGET_KINDS, budgetVector } from "@bulkhead/core";
import { replayBudgetLedger, startTestPostgres, type TestPostgres } from "@bulkhead/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresBudgetStore } from "./postgres-budget-store.js";
import { createPostgresWorkHookStore } from "./postgres-work-hook-store.js";

// Eight simulated hosts: separate processes, each with its own pool, on one PostgreSQL.
// BULKHEAD_HOST_OPS scales the reservations per host down on a slow machine (the bench runs the full size).
const HOSTS = 8;
const OPS = Number(process.env.BULKHEAD_HOST_OPS ?? 1_000);
const TASKS_PER_HOST = Number(process.env.BULKHEAD_HOST_TASKS ?? 500);
const VICTIM_TTL_MS = 3_000;
const hostScript = fileURLToPath(new URL("../test/host.ts", import.meta.url));

let postgres: TestPostgres;
beforeAll(async () => {
  postgres = await startTestPostgres();
});
afterAll(() => postgres?.stop());

interface Host {
  child: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
  waitFor(line: string): Promise<void>;
}

function startHost(args: string[]): Host {
  const child = spawn(process.execPath, ["--import", "tsx", hostScript, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  const lines: string[] = [];
  const waiters: { line: string; resolve: () => void }[] = [];
  let buffer = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    buffer += chunk.toString();
    for (let end = buffer.indexOf("\n"); end >= 0; end = buffer.indexOf("\n")) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
      lines.push(line);
      for (const waiter of waiters.filter((candidate) => candidate.line === line)) waiter.resolve();
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    child,
    lines,
    exited,
    waitFor: (line) =>
      new Promise((resolve, reject) => {
        if (lines.includes(line)) return resolve();
        waiters.push({ line, resolve });
        void exited.then((code) => reject(new Error(`host exited (${code}) before printing ${line}: ${lines.join("\n")}`)));
      }),
  };
}

describe("eight hosts on one PostgreSQL", () => {
  it(`never spend past a nested cap (${HOSTS} hosts × ${OPS} reservations, one SIGKILLed), and the ledger replays to the totals`, async () => {
    const victim = HOSTS - 1;
    const holdAfter = Math.floor(OPS / 4) + (Date.now() % Math.floor(OPS / 4));
    const hosts = Array.from({ length: HOSTS }, (_, host) =>
      startHost([
        "budget",
        postgres.url,
        String(host),
        String(OPS),
        host === victim ? String(VICTIM_TTL_MS) : "120000",
        ...(host === victim ? [String(holdAfter)] : []),
      ]),
    );
    await hosts[victim]!.waitFor("HOLDING");
    hosts[victim]!.child.kill("SIGKILL");
    const killedAt = Date.now();
    const store = createPostgresBudgetStore({ connectionString: postgres.url });
    try {
      // The killed host's lease still holds on its session, until its TTL passes.
      const [held] = await store.levels([`session-${victim}`]);
      expect(held!.reserved.generation).toBeGreaterThan(0);

      const codes = await Promise.all(hosts.map((host) => host.exited));
      expect(codes.slice(0, victim)).toEqual(Array(victim).fill(0));
      const reports = hosts
        .slice(0, victim)
        .map((host) => JSON.parse(host.lines.at(-1)!) as { granted: number; refused: number; ms: number });
      console.log(JSON.stringify(reports));
      // The caps bind: some reservations were refused, many granted.
      expect(reports.reduce((sum, report) => sum + report.refused, 0)).toBeGreaterThan(0);
      expect(reports.reduce((sum, report) => sum + report.granted, 0)).toBeGreaterThan(OPS);

      const wait = killedAt + VICTIM_TTL_MS + 200 - Date.now();
      if (wait > 0) await sleep(wait);
      await store.sweep();
      const ids = [
        "team",
        ...Array.from({ length: HOSTS }, (_, host) => [
          `session-${host}`,
          ...Array.from({ length: 10 }, (_, task) => `task-${host}-${task}`),
        ]).flat(),
      ];
      const levels = await store.levels(ids);
      const totals = replayBudgetLedger(await store.ledger());
      for (const level of levels) {
        // Every hold went back: the survivors settled theirs, the killed host's expired.
        for (const kind of BUDGET_KINDS) expect(level.reserved[kind], `${level.id} ${kind} reserved`).toBe(0);
        for (const kind of BUDGET_KINDS) {
          const limit = level.limits[kind];
          if (limit !== undefined) expect(level.used[kind], `${level.id} ${kind}`).toBeLessThanOrEqual(limit);
        }
        expect(totals.get(level.id) ?? budgetVector(), `${level.id} replayed`).toEqual(level.used);
      }
      expect(levels[0]!.used.sessionTotal).toBeGreaterThan(0);
    } finally {
      await store.close();
      for (const host of hosts) host.child.kill("SIGKILL");
    }
  }, 900_000);

  it(`claim and complete every task exactly once (${HOSTS} hosts × ${TASKS_PER_HOST} tasks)`, async () => {
    const schemaUrl = postgres.url;
    const seed = createPostgresWorkHookStore({ connectionString: schemaUrl });
    const ids = Array.from({ length: HOSTS * TASKS_PER_HOST }, (_, index) => `task-${String(index).padStart(5, "0")}`);
    for (let start = 0; start < ids.length; start += 500) await seed.add(ids.slice(start, start + 500).map((id) => ({ id })));
    try {
      const hosts = Array.from({ length: HOSTS }, (_, host) => startHost(["claims", schemaUrl, String(host), "60000"]));
      expect(await Promise.all(hosts.map((host) => host.exited))).toEqual(Array(HOSTS).fill(0));
      const completed = hosts.flatMap((host) => (JSON.parse(host.lines.at(-1)!) as { completed: string[] }).completed);
      expect(completed).toHaveLength(ids.length);
      expect(new Set(completed).size).toBe(ids.length);
      const tasks = await seed.tasks();
      expect(tasks.every((task) => task.state === "complete" && task.attempts === 1)).toBe(true);
      // Work spread over the hosts: each did some.
      for (const host of hosts) expect((JSON.parse(host.lines.at(-1)!) as { completed: string[] }).completed.length).toBeGreaterThan(0);
    } finally {
      await seed.close?.();
    }
  }, 900_000);
});

// bench/store: the shared stores of issue 16 on PostgreSQL. Reservation cycles (reserve + settle
// through createBudget) and claims (claimNext + complete through createWorkHook) per second,
// beside a bare SQL loop sending the same statements on one connection, beside today's file
// stores on one host, and how throughput scales with 1, 4 and 8 hosts (separate processes).
// The server is a private cluster with fsync and synchronous commit ON, as in production.
// Run with `npm run bench -- store`.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBudget, createFileBudgetStore } from "@bulkhead/budget";
import { createWorkHook } from "@bulkhead/git-lead";
import { createPostgresBudgetStore, createPostgresWorkHookStore } from "@bulkhead/postgres";
import pg from "pg";
import { startTestPostgres } from "../tools/test-utils/src/postgres.ts";
import { begin, report, RUNS, toSample, type Sample } from "./lib/bench-helper.js";

const OPS = Number(process.env.BENCH_STORE_OPS ?? 1_000);
// Through bench/lib/bench-helper: at least 3 rounds (10 by default), each case once per round.
const ROUNDS = Math.max(10, RUNS);
/** Runs each measurement once per round, in an order that alternates between rounds (no one always goes first); the ms of each round. */
async function interleave(rounds: number, measures: (() => Promise<number>)[]): Promise<number[][]> {
  const timings = measures.map(() => [] as number[]);
  for (let round = 0; round < rounds; round++) {
    const order = measures.map((_, index) => index);
    if (round % 2 === 1) order.reverse();
    for (const index of order) timings[index]!.push(await measures[index]!());
  }
  return timings;
}
/** Operations per second at a sample's median round. */
const rate = (perRound: number) => (sample: Sample) => perSecond(perRound, sample.median).toLocaleString("en-US");
const HOST_OPS = Number(process.env.BENCH_STORE_HOST_OPS ?? 300);
const perSecond = (count: number, ms: number) => Math.round((count / ms) * 1000);
const time = async (work: () => Promise<void>) => {
  const started = performance.now();
  await work();
  return performance.now() - started;
};

const mark = begin(
  `bench/store: ${OPS} operations per case in ${ROUNDS} rounds, ${HOST_OPS} per host when scaling; PostgreSQL 15, fsync and synchronous commit on`,
);
const server = await startTestPostgres({ durable: true });
try {
  // --- reservations: the store through createBudget
  const store = createPostgresBudgetStore({ connectionString: server.url, schema: "bench" });
  const team = createBudget({ id: "team", limits: { sessionTotal: 1e12 }, store });
  const task = createBudget({ id: "task", parent: team, limits: { generation: 1e12 }, store });
  await task.refresh();
  for (let index = 0; index < 100; index++)
    await task.settleAsync({ lease: await task.reserveAsync({ amounts: { generation: 100 } }), spent: 60 });
  // --- the same statements in a bare loop, on one connection
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  const kinds = ["context_read", "generation", "tool_calls", "session_total", "usd"];
  const fits = (kind: string, n: number) => {
    const room = `($${n}::float8 = 0 OR $${n}::float8 <= limit_${kind} - used_${kind} - reserved_${kind})`;
    return kind === "session_total" || kind === "usd"
      ? `(limit_${kind} IS NULL OR (used_${kind} < limit_${kind} AND ${room}))`
      : `(limit_${kind} IS NULL OR ${room})`;
  };
  const reserveSql = `UPDATE bench.budget_levels SET ${kinds.map((kind, index) => `reserved_${kind} = reserved_${kind} + $${index + 2}::float8`).join(", ")} WHERE id = $1 AND ${kinds.map((kind, index) => fits(kind, index + 2)).join(" AND ")} RETURNING *`;
  const moveSql = `UPDATE bench.budget_levels SET ${kinds.map((kind, index) => `reserved_${kind} = reserved_${kind} - $${index + 2}::float8, used_${kind} = used_${kind} + $${index + 7}::float8`).join(", ")} WHERE id = $1 RETURNING *`;
  const now = "(extract(epoch from clock_timestamp()) * 1000)::bigint";
  const amounts = [0, 100, 0, 100, 0];
  const actual = [0, 60, 0, 60, 0];
  const bareCycle = async () => {
    // The same lease id the store makes: budget, time, randomness.
    const id = `task#${Date.now().toString(36)}-${randomBytes(6).toString("hex")}`;
    await client.query("BEGIN");
    for (const level of ["task", "team"]) await client.query(reserveSql, [level, ...amounts]);
    await client.query(
      `INSERT INTO bench.budget_leases (id, chain, amounts, expires_at, state) VALUES ($1, $2::text[], $3::float8[], ${now} + 600000, 'active') RETURNING expires_at`,
      [id, ["task", "team"], amounts],
    );
    await client.query("COMMIT");
    await client.query("BEGIN");
    await client.query("DELETE FROM bench.budget_leases WHERE id = $1 RETURNING chain, amounts, state", [id]);
    await client.query(
      `INSERT INTO bench.budget_ledger (settlement, at, event) VALUES ($1, ${now}, $2::jsonb) ON CONFLICT (settlement) DO NOTHING`,
      [
        id,
        JSON.stringify({
          type: "settle",
          chain: ["task", "team"],
          amounts: { generation: 60, sessionTotal: 60 },
          lease: id,
          settlement: id,
        }),
      ],
    );
    for (const level of ["task", "team"]) await client.query(moveSql, [level, ...amounts, ...actual]);
    await client.query("COMMIT");
  };
  for (let index = 0; index < 100; index++) await bareCycle();
  // --- today's file store, one host
  const dir = mkdtempSync(join(tmpdir(), "bulkhead-bench-store-"));
  const fileStore = createFileBudgetStore({ dir });
  const fileTeam = createBudget({ id: "team", limits: { sessionTotal: 1e12 }, store: fileStore });
  const fileTask = createBudget({ id: "task", parent: fileTeam, limits: { generation: 1e12 }, store: fileStore });
  await fileTask.refresh();
  // Interleaved rounds in alternating order, so a change in the machine's load hits all three alike.
  const [storeMs, bareMs, fileMs] = (await interleave(ROUNDS, [
    () =>
      time(async () => {
        for (let index = 0; index < OPS / ROUNDS; index++)
          await task.settleAsync({ lease: await task.reserveAsync({ amounts: { generation: 100 } }), spent: 60 });
      }),
    () =>
      time(async () => {
        for (let index = 0; index < OPS / ROUNDS; index++) await bareCycle();
      }),
    () =>
      time(async () => {
        for (let index = 0; index < OPS / ROUNDS; index++)
          await fileTask.settleAsync({ lease: await fileTask.reserveAsync({ amounts: { generation: 100 } }), spent: 60 });
      }),
  ])) as [number[], number[], number[]];
  await fileStore.close();
  rmSync(dir, { recursive: true, force: true });
  report(
    mark,
    [
      toSample("bare SQL, the same statements on one connection (baseline)", bareMs),
      toSample("reservation cycles: bulkhead on PostgreSQL, one host", storeMs),
      toSample("reservation cycles: file store, one host", fileMs),
    ],
    { extra: { "cycles/s": rate(OPS / ROUNDS) } },
  );
  // --- claims: the store through createWorkHook, a bare loop, the file hook
  const hookStore = createPostgresWorkHookStore({ connectionString: server.url, schema: "bench" });
  const hook = createWorkHook({ store: hookStore });
  const ids = (prefix: string) => Array.from({ length: OPS }, (_, index) => ({ id: `${prefix}-${String(index).padStart(6, "0")}` }));
  // Both loops take the next ready task from one table, in interleaved rounds.
  await hookStore.add(ids("a"));
  await hookStore.add(ids("b"));
  const ready = `t.state = 'open' AND (t.claim_token IS NULL OR t.claim_expires_at <= ${now}) AND NOT EXISTS (SELECT 1 FROM unnest(t.depends_on) AS d(id) LEFT JOIN bench.hook_tasks AS dep ON dep.id = d.id WHERE dep.state IS DISTINCT FROM 'complete')`;
  const bareClaims = async () => {
    for (let index = 0; index < OPS / ROUNDS; index++) {
      const { rows: claimed } = await client.query(
        `WITH next AS (SELECT id FROM bench.hook_tasks AS t WHERE ${ready} ORDER BY id COLLATE "C" LIMIT 1 FOR UPDATE SKIP LOCKED)
         UPDATE bench.hook_tasks AS t SET claim_worker = $1, claim_token = nextval('bench.hook_fence'), claim_expires_at = ${now} + $2::bigint FROM next WHERE t.id = next.id RETURNING t.*`,
        ["bench", 600000],
      );
      await client.query(
        `UPDATE bench.hook_tasks SET state = 'complete', attempts = attempts + 1, result = $3::jsonb, claim_worker = NULL, claim_token = NULL, claim_expires_at = NULL WHERE id = $1 AND state = 'open' AND claim_token = $2::bigint AND claim_expires_at > ${now} RETURNING *`,
        [claimed[0].id, claimed[0].claim_token, null],
      );
    }
  };
  // The file hook on one host, the same claims (a claim reads only the claimed task since issue 19).
  const hookDir = mkdtempSync(join(tmpdir(), "bulkhead-bench-hook-"));
  const fileHook = createWorkHook({ dir: hookDir });
  await fileHook.add(ids("c"));
  const [claimMs, bareClaimMs, fileClaimMs] = (await interleave(ROUNDS, [
    () =>
      time(async () => {
        for (let index = 0; index < OPS / ROUNDS; index++) await hook.complete({ claim: (await hook.claimNext({ worker: "bench" }))! });
      }),
    () => time(bareClaims),
    () =>
      time(async () => {
        for (let index = 0; index < OPS / ROUNDS; index++)
          await fileHook.complete({ claim: (await fileHook.claimNext({ worker: "bench" }))! });
      }),
  ])) as [number[], number[], number[]];
  rmSync(hookDir, { recursive: true, force: true });
  report(
    mark,
    [
      toSample("bare SQL claim + complete on one connection (baseline)", bareClaimMs),
      toSample("claims: bulkhead on PostgreSQL, one host", claimMs),
      toSample("claims: file hook, one host", fileClaimMs),
    ],
    { extra: { "claims/s": rate(OPS / ROUNDS) } },
  );
  await client.end();
  await hookStore.close?.();
  await store.close();

  // --- scaling: 1, 4 and 8 hosts, each its own process and pool, all on one team budget
  const scale = async (mode: "budget" | "claims", hosts: number, round: number) => {
    const schema = `scale_${mode}_${hosts}_${round}`;
    if (mode === "claims") {
      const seed = createPostgresWorkHookStore({ connectionString: server.url, schema });
      await seed.add(Array.from({ length: hosts * HOST_OPS }, (_, index) => ({ id: `t-${String(index).padStart(6, "0")}` })));
      await seed.close?.();
    }
    const children = Array.from({ length: hosts }, (_, host) =>
      spawn(
        process.execPath,
        ["--import", "tsx", join(import.meta.dirname, "store", "host.ts"), mode, server.url, String(host), String(HOST_OPS), schema],
        {
          stdio: ["pipe", "pipe", "inherit"],
        },
      ),
    );
    const outputs = children.map((child) => {
      let text = "";
      child.stdout.on("data", (chunk: Buffer) => (text += chunk.toString()));
      return {
        ready: () => text.includes("READY"),
        ms: () => Number(text.split("\n").filter(Boolean).at(-1)),
        done: new Promise((resolve) => child.on("exit", resolve)),
      };
    });
    while (!outputs.every((output) => output.ready())) await new Promise((resolve) => setTimeout(resolve, 50));
    const started = performance.now();
    for (const child of children) child.stdin.write("go\n");
    await Promise.all(outputs.map((output) => output.done));
    return performance.now() - started;
  };
  // RUNS rounds of 1, 4 and 8 hosts, interleaved; each round on its own schema.
  for (const mode of ["budget", "claims"] as const) {
    const timings = new Map<number, number[]>([1, 4, 8].map((hosts) => [hosts, []]));
    for (let round = 0; round < RUNS; round++) for (const hosts of [1, 4, 8]) timings.get(hosts)!.push(await scale(mode, hosts, round));
    const label = mode === "budget" ? "reservation cycles" : "claims";
    report(
      mark,
      [...timings].map(([hosts, ms]) => toSample(`${label}, ${hosts} host${hosts === 1 ? "" : "s"} (${hosts * HOST_OPS} in all)`, ms)),
      {
        extra: {
          [`${label}/s`]: (sample) => perSecond(Number(/\((\d+) in all\)/.exec(sample.label)![1]), sample.median).toLocaleString("en-US"),
        },
        notes: ["time ÷ baseline here is the whole run's time with N hosts doing N times the work, beside 1 host"],
      },
    );
  }
} finally {
  await server.stop();
}

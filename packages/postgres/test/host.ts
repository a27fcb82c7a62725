// One simulated host for the multi-host tests: its own process, its own pool, the same database.
// `budget <url> <host> <ops> <ttlMs> [holdAfter]`: reservations with random actuals against
// team ⊃ session ⊃ task, checking every cap after every settlement; with holdAfter, it reserves
// once more after that many operations, prints HOLDING and waits to be killed.
// `claims <url> <host> <ttlMs>`: claims and completes tasks until none is left, printing each id.
import { createBudget } from "@bulkhead/budget";
import { BUDGET_KINDS, type BudgetKind } from "@bulkhead/core";
import { createWorkHook } from "@bulkhead/git-lead";
import { createPostgresBudgetStore, createPostgresWorkHookStore } from "@bulkhead/postgres";

const [mode, url, hostArgument, ...rest] = process.argv.slice(2);
const host = Number(hostArgument);

/** A small seeded generator, so a host's sequence of estimates is the same on every run. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

/** Caps that bind at every level for `ops` reservations of 1-200 tokens per host (about 50 spent each). */
const capsFor = (ops: number) => ({ team: ops * 100, session: ops * 20, task: ops * 2.5, tasksPerHost: 10 });
const started = performance.now();

if (mode === "budget") {
  const [opsArgument, ttlArgument, holdArgument] = rest;
  const ops = Number(opsArgument);
  const CAPS = capsFor(ops);
  const ttlMs = Number(ttlArgument);
  const holdAfter = holdArgument === undefined ? Infinity : Number(holdArgument);
  const store = createPostgresBudgetStore({ connectionString: url!, maxConnections: 4 });
  const team = createBudget({ id: "team", limits: { sessionTotal: CAPS.team }, store, leaseTtlMs: ttlMs });
  const session = createBudget({ id: `session-${host}`, parent: team, limits: { sessionTotal: CAPS.session }, store, leaseTtlMs: ttlMs });
  const tasks = Array.from({ length: CAPS.tasksPerHost }, (_, index) =>
    createBudget({ id: `task-${host}-${index}`, parent: session, limits: { generation: CAPS.task }, store, leaseTtlMs: ttlMs }),
  );
  // Every level exists before the first reservation, so a host killed early leaves no level undefined.
  for (const task of tasks) await task.refresh();
  const next = random(host * 7919 + 17);
  let done = 0;
  let granted = 0;
  let refused = 0;
  const check = (budget: (typeof tasks)[number]) => {
    for (let level: typeof budget | undefined = budget; level; level = level.parent) {
      for (const kind of BUDGET_KINDS as readonly BudgetKind[]) {
        const limit = level.limit(kind);
        if (limit !== undefined && level.used(kind) > limit) {
          console.log(`VIOLATION ${level.id} ${kind} used ${level.used(kind)} over ${limit}`);
          process.exit(3);
        }
      }
    }
  };
  // Four workers per host, so reservations of one host also race each other.
  const worker = async () => {
    while (done < ops) {
      const index = done++;
      if (index >= holdAfter) {
        await tasks[0]!.reserveAsync({ amounts: { generation: 1 } });
        console.log("HOLDING");
        await new Promise(() => undefined);
      }
      const task = tasks[Math.floor((index * CAPS.tasksPerHost) / ops)]!;
      const estimate = 1 + Math.floor(next() * 200);
      const lease = await task.tryReserveAsync({ amounts: { generation: estimate } });
      if (!lease) {
        refused++;
        continue;
      }
      granted++;
      await task.settleAsync({ lease, spent: Math.floor(next() * (estimate + 1)) });
      check(task);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  await store.close();
  console.log(JSON.stringify({ host, granted, refused, ms: Math.round(performance.now() - started) }));
} else if (mode === "claims") {
  const [ttlArgument] = rest;
  const hook = createWorkHook({ store: createPostgresWorkHookStore({ connectionString: url!, maxConnections: 4 }) });
  const completed: string[] = [];
  const worker = async (name: string) => {
    for (;;) {
      const claim = await hook.claimNext({ worker: name, ttlMs: Number(ttlArgument) });
      if (!claim) {
        if ((await hook.tasks()).every((task) => task.state !== "open")) return;
        await new Promise((resolve) => setTimeout(resolve, 20));
        continue;
      }
      await hook.complete({ claim });
      completed.push(claim.taskId);
    }
  };
  await Promise.all(Array.from({ length: 4 }, (_, index) => worker(`host-${host}-worker-${index}`)));
  await hook.close?.();
  console.log(JSON.stringify({ host, completed, ms: Math.round(performance.now() - started) }));
} else {
  throw new Error(`unknown mode ${mode}`);
}

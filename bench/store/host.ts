// One host of bench/store: its own process and pool. Prints READY, waits for a line on stdin,
// runs `ops` reservation cycles (reserve + settle) or claims (claimNext + complete), prints the ms.
import { createInterface } from "node:readline";
import { createBudget } from "@bulkhead/budget";
import { createWorkHook } from "@bulkhead/git-lead";
import { createPostgresBudgetStore, createPostgresWorkHookStore } from "@bulkhead/postgres";

const [mode, url, host, opsArgument, schema] = process.argv.slice(2);
const ops = Number(opsArgument);
// The interface is closed after the line: an open stdin would keep this process from exiting.
const go = () =>
  new Promise<void>((resolve) => {
    const lines = createInterface({ input: process.stdin });
    lines.once("line", () => {
      lines.close();
      process.stdin.destroy(); // a paused stdin socket still keeps the process alive
      resolve();
    });
  });

if (mode === "budget") {
  const store = createPostgresBudgetStore({ connectionString: url!, schema: schema!, maxConnections: 2 });
  const team = createBudget({ id: "team", limits: { sessionTotal: 1e12 }, store });
  const task = createBudget({ id: `task-${host}`, parent: team, limits: { generation: 1e12 }, store });
  await task.refresh();
  console.log("READY");
  await go();
  const started = performance.now();
  for (let index = 0; index < ops; index++)
    await task.settleAsync({ lease: await task.reserveAsync({ amounts: { generation: 100 } }), spent: 60 });
  console.log(performance.now() - started);
  await store.close();
} else {
  const hook = createWorkHook({ store: createPostgresWorkHookStore({ connectionString: url!, schema: schema!, maxConnections: 2 }) });
  await hook.ready();
  console.log("READY");
  await go();
  const started = performance.now();
  for (let index = 0; index < ops; index++) {
    const claim = await hook.claimNext({ worker: `host-${host}` });
    if (!claim) break;
    await hook.complete({ claim });
  }
  console.log(performance.now() - started);
  await hook.close?.();
}

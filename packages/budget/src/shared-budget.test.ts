import { spawn } from "node:child_process";
import { StoreUnavailableError, type BudgetStore } from "@bulkhead/core";
import { createTempDir } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { BudgetExceededError } from "./budget-exceeded-error.js";
import { createBudget } from "./create-budget.js";
import { createFileBudgetStore, createMemoryBudgetStore } from "./file-budget-store.js";
import { LeaseNotActiveError } from "./lease-not-active-error.js";

describe("a budget on a store", () => {
  const nested = (store: BudgetStore) => {
    const team = createBudget({ id: "team", limits: { sessionTotal: 1_000 }, store });
    const session = createBudget({ id: "session", parent: team, limits: { sessionTotal: 800 }, store });
    const task = createBudget({ id: "task", parent: session, limits: { generation: 500 }, store });
    return { team, session, task };
  };

  it("reserves, settles and refuses through the async methods, at every level", async () => {
    const store = createMemoryBudgetStore();
    const { team, task } = nested(store);
    const exceeded: string[] = [];
    task.on("budget-exceeded", (event) => exceeded.push(`${event.budgetId}:${event.kind}`));
    const lease = await task.reserveAsync({ amounts: { generation: 400 } });
    expect(task.reserved("generation")).toBe(400);
    expect(team.reserved("sessionTotal")).toBe(400);
    await expect(task.reserveAsync({ amounts: { generation: 101 } })).rejects.toThrow(BudgetExceededError);
    expect(await task.tryReserveAsync({ amounts: { generation: 101 } })).toBeUndefined();
    await task.settleAsync({ lease, spent: 500 });
    expect([task.used("generation"), team.used("sessionTotal"), team.reserved("sessionTotal")]).toEqual([500, 500, 0]);
    expect(exceeded).toEqual(["task:generation"]);
    await expect(task.settleAsync({ lease, spent: 1 })).rejects.toThrow(LeaseNotActiveError);
    await task.extendAsync({ kind: "generation", amount: 100, approvedBy: "lead" });
    expect(task.limit("generation")).toBe(600);
  });

  it("keeps the sync methods for local budgets only, saying what to call instead", () => {
    const { task } = nested(createMemoryBudgetStore());
    expect(() => task.reserve({ amounts: { generation: 1 } })).toThrow(/shared through a memory store: use the async methods/);
    expect(() =>
      createBudget({ id: "orphan", parent: createBudget({ limits: {} }), limits: {}, store: createMemoryBudgetStore() }),
    ).toThrow(/must use the same store/);
  });

  it("works the same without a store, so code written for the async methods runs on both", async () => {
    const budget = createBudget({ limits: { generation: 100 } });
    const lease = await budget.reserveAsync({ amounts: { generation: 60 } });
    await budget.settleAsync({ lease, spent: 50 });
    expect(budget.used("generation")).toBe(50);
    expect(budget.shared).toBe(false);
  });

  it("shares one cap across processes on one host through the file store", async () => {
    await using dir = createTempDir();
    // Four processes each try 40 reservations of 10 against a session total of 1,000.
    const script = `
      import { createBudget, createFileBudgetStore } from "@bulkhead/budget";
      const store = createFileBudgetStore({ dir: process.argv[1] });
      const team = createBudget({ id: "team", limits: { sessionTotal: 1000 }, store });
      let granted = 0;
      for (let index = 0; index < 40; index++) {
        const lease = await team.tryReserveAsync({ amounts: { generation: 10 } });
        if (lease) { granted++; await team.settleAsync({ lease, spent: 10 }); }
      }
      await store.close();
      console.log(granted);
    `;
    const counts = await Promise.all(
      Array.from(
        { length: 4 },
        () =>
          new Promise<number>((resolve, reject) => {
            const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, dir.path], {
              stdio: ["ignore", "pipe", "inherit"],
            });
            let out = "";
            child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
            child.on("exit", (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`child exited ${code}`))));
          }),
      ),
    );
    expect(counts.reduce((sum, count) => sum + count, 0)).toBe(100);
    const store = createFileBudgetStore({ dir: dir.path });
    const [team] = await store.levels(["team"]);
    expect(team!.used.sessionTotal).toBe(1000);
    await store.close();
  });

  it("fails closed with StoreUnavailableError from the store, holding nothing", async () => {
    const store = createMemoryBudgetStore();
    const broken: BudgetStore = {
      ...store,
      reserve: async () => Promise.reject(new StoreUnavailableError("test", "reserve", new Error("down"))),
    };
    const budget = createBudget({ id: "down", limits: { generation: 10 }, store: broken });
    await expect(budget.reserveAsync({ amounts: { generation: 1 } })).rejects.toSatisfy((error) => StoreUnavailableError.isInstance(error));
    expect(budget.reserved("generation")).toBe(0);
  });
});

import { createBudget } from "@bulkhead/budget";
import { createMultiRepoGuard } from "@bulkhead/core";
import { createWorkHook } from "@bulkhead/git-lead";
import { startTestPostgres, type TestPostgres } from "@bulkhead/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStore } from "./create-store.js";

let postgres: TestPostgres;
beforeAll(async () => {
  postgres = await startTestPostgres();
});
afterAll(() => postgres?.stop());

describe("createStore", () => {
  it("opens every shared store on one database from one connection string", async () => {
    const url = postgres.url.replace(/^postgresql:/, "postgres:");
    await using stores = createStore(url, { schema: "team" });
    const team = createBudget({ id: "team", limits: { sessionTotal: 1_000 }, store: stores.budgets });
    await team.settleAsync({ lease: await team.reserveAsync({ amounts: { generation: 100 } }), spent: 80 });
    const hook = createWorkHook({ store: stores.workHook });
    await hook.add([{ id: "types" }]);
    await hook.complete({ claim: (await hook.claimNext({ worker: "w1" }))! });
    const guard = createMultiRepoGuard({ primaryRepo: "backend", store: stores.proposals });
    expect(await guard.pending()).toEqual([]);
    await stores.sessions.register({ id: "s1", host: "runner-a", engine: "docker://local", state: "running" });
    // A second host sees the same state.
    await using other = createStore(url, { schema: "team" });
    expect((await other.budgets.levels(["team"]))[0]!.used.sessionTotal).toBe(80);
    expect((await other.workHook.tasks())[0]).toMatchObject({ id: "types", state: "complete" });
    expect((await other.sessions.list()).map((session) => session.host)).toEqual(["runner-a"]);
  });

  it("refuses a setting that is not a postgres:// URL", () => {
    expect(() => createStore("files:///tmp/x")).toThrow(/expected a postgres:\/\/ connection string/);
  });
});

import { setTimeout as sleep } from "node:timers/promises";
import { ClaimRefusedError, type Claim, type WorkHookStore } from "@bulkhead/core";
import { afterEach, describe, expect, it } from "vitest";

/**
 * The public hook's shape (`WorkHook` of @bulkhead/git-lead: one options object per call), written
 * out here so test-utils needs only core. Every store is tested through `createWorkHook`.
 */
interface Hook {
  add: WorkHookStore["add"];
  ready: WorkHookStore["ready"];
  tasks: WorkHookStore["tasks"];
  claim(options: { taskId: string; worker: string; ttlMs?: number }): Promise<Claim>;
  claimNext(options: { worker: string; ttlMs?: number }): Promise<Claim | undefined>;
  renew(options: { claim: Claim; ttlMs?: number }): Promise<Claim>;
  complete(options: { claim: Claim; result?: unknown }): Promise<void>;
  fail(options: { claim: Claim; reason: string; final?: boolean }): Promise<void>;
  release(options: { claim: Claim }): Promise<void>;
  close?(): Promise<void>;
}

const refused = (error: unknown) => ClaimRefusedError.isInstance(error);

/**
 * The conformance suite of a work hook: the file hook and every {@link WorkHookStore} behind
 * `createWorkHook({ store })` run it and must behave the same. `create` returns a new, empty hook
 * (made with `createWorkHook`).
 */
export function describeWorkHook(name: string, create: () => Promise<Hook>): void {
  describe(`WorkHook conformance: ${name}`, () => {
    const opened: Hook[] = [];
    const open = async () => {
      const hook = await create();
      opened.push(hook);
      return hook;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((hook) => hook.close?.()));
    });

    it("offers only tasks whose dependencies are complete, and refuses a duplicate id", async () => {
      const hook = await open();
      await hook.add([
        { id: "types", payload: { spec: "a.yaml" } },
        { id: "routes", dependsOn: ["types"] },
      ]);
      expect((await hook.ready()).map((task) => task.id)).toEqual(["types"]);
      expect((await hook.ready())[0]).toMatchObject({ payload: { spec: "a.yaml" }, state: "open", attempts: 0 });
      await expect(hook.add([{ id: "types" }])).rejects.toThrow(/listed twice|already on the hook/);
      await expect(hook.claim({ taskId: "routes", worker: "w1" })).rejects.toSatisfy(refused);
      const claim = await hook.claim({ taskId: "types", worker: "w1" });
      expect((await hook.ready()).map((task) => task.id)).toEqual([]);
      await hook.complete({ claim, result: { ok: true } });
      expect((await hook.ready()).map((task) => task.id)).toEqual(["routes"]);
      expect((await hook.tasks()).find((task) => task.id === "types")).toMatchObject({
        state: "complete",
        attempts: 1,
        result: { ok: true },
      });
    });

    it("lets exactly one of many concurrent claimers win", async () => {
      const hook = await open();
      await hook.add([{ id: "only" }]);
      const outcomes = await Promise.allSettled(
        Array.from({ length: 12 }, (_, index) => hook.claim({ taskId: "only", worker: `w${index}` })),
      );
      expect(outcomes.filter((outcome) => outcome.status === "fulfilled")).toHaveLength(1);
      for (const outcome of outcomes) if (outcome.status === "rejected") expect(refused(outcome.reason)).toBe(true);
    });

    it("gives concurrent claimNext callers different tasks, and undefined when none is ready", async () => {
      const hook = await open();
      await hook.add(Array.from({ length: 10 }, (_, index) => ({ id: `t${String(index).padStart(2, "0")}` })));
      const claims = await Promise.all(Array.from({ length: 14 }, (_, index) => hook.claimNext({ worker: `w${index}` })));
      const taken = claims.filter((claim): claim is Claim => claim !== undefined).map((claim) => claim.taskId);
      expect(taken.sort()).toEqual(Array.from({ length: 10 }, (_, index) => `t${String(index).padStart(2, "0")}`));
      expect(await hook.claimNext({ worker: "late" })).toBeUndefined();
    });

    it("rejects the old holder after its claim expired and was taken over (the fencing token)", async () => {
      const hook = await open();
      await hook.add([{ id: "slow" }]);
      const old = await hook.claim({ taskId: "slow", worker: "w1", ttlMs: 100 });
      await sleep(250);
      const current = await hook.claim({ taskId: "slow", worker: "w2", ttlMs: 60_000 });
      expect(current.token).not.toBe(old.token);
      if (old.fence !== undefined) expect(current.fence).toBeGreaterThan(old.fence);
      await expect(hook.complete({ claim: old })).rejects.toSatisfy(refused);
      await expect(hook.renew({ claim: old })).rejects.toSatisfy(refused);
      await expect(hook.fail({ claim: old, reason: "late" })).rejects.toSatisfy(refused);
      await hook.complete({ claim: current });
      expect((await hook.tasks())[0]).toMatchObject({ state: "complete", attempts: 1 });
    });

    it("refuses to complete an expired claim even before anyone takes it over", async () => {
      const hook = await open();
      await hook.add([{ id: "lapsed" }]);
      const claim = await hook.claim({ taskId: "lapsed", worker: "w1", ttlMs: 100 });
      await sleep(250);
      await expect(hook.complete({ claim })).rejects.toThrow(/expired/);
      expect((await hook.ready()).map((task) => task.id)).toEqual(["lapsed"]);
    });

    it("renews, fails (again or for good) and releases with the current claim", async () => {
      const hook = await open();
      await hook.add([{ id: "a" }, { id: "b" }]);
      const first = await hook.claim({ taskId: "a", worker: "w1", ttlMs: 60_000 });
      const renewed = await hook.renew({ claim: first, ttlMs: 120_000 });
      expect(renewed.expiresAt).toBeGreaterThan(first.expiresAt);
      await hook.fail({ claim: renewed, reason: "tests failed" });
      expect((await hook.tasks())[0]).toMatchObject({ id: "a", state: "open", attempts: 1, reason: "tests failed" });
      await hook.fail({ claim: await hook.claim({ taskId: "a", worker: "w1" }), reason: "gave up", final: true });
      expect((await hook.tasks())[0]).toMatchObject({ state: "failed", attempts: 2 });
      const held = await hook.claim({ taskId: "b", worker: "w2" });
      await hook.release({ claim: held });
      expect((await hook.ready()).map((task) => task.id)).toEqual(["b"]);
      await expect(hook.release({ claim: held })).rejects.toSatisfy(refused);
    });
  });
}

import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTempDir, describeWorkHook } from "@bulkhead/test-utils";
import { afterAll, describe, expect, it } from "vitest";
import { createWorkHook } from "./create-work-hook.js";

const dir = createTempDir();
afterAll(() => dir.remove());
let count = 0;
describeWorkHook("files", async () => createWorkHook({ dir: join(dir.path, `hook-${++count}`) }));

describe("the file work hook's claim path", () => {
  it("claims by reading only the claimed task and its dependencies, not every task", async () => {
    const hook = createWorkHook({ dir: join(dir.path, "only-its-own") });
    await hook.add([{ id: "base" }, ...Array.from({ length: 50 }, (_, index) => ({ id: `t${index}`, dependsOn: ["base"] }))]);
    await hook.complete({ claim: await hook.claim({ taskId: "base", worker: "w0" }) });
    // Every other task's file is unreadable as JSON: a claim that lists and parses all tasks
    // (an O(tasks) claim) fails; one that reads t7 and its dependency succeeds.
    for (let index = 0; index < 50; index++)
      if (index !== 7) writeFileSync(join(dir.path, "only-its-own", "tasks", `t${index}.json`), "{ not json");
    const claim = await hook.claim({ taskId: "t7", worker: "w1" });
    expect(claim).toMatchObject({ taskId: "t7", worker: "w1" });
    await hook.complete({ claim });
    expect(readFileSync(join(dir.path, "only-its-own", "tasks", "t7.json"), "utf8")).toContain('"state":"complete"');
  });

  it("keeps an index of ready tasks: completing a dependency adds its dependents, claiming removes them", async () => {
    const root = join(dir.path, "index");
    const hook = createWorkHook({ dir: root });
    await hook.add([{ id: "a" }, { id: "b", dependsOn: ["a"] }, { id: "c", dependsOn: ["a", "b"] }]);
    const indexed = () => readdirSync(join(root, "ready")).sort();
    expect(indexed()).toEqual(["a"]);
    const a = await hook.claimNext({ worker: "w1" });
    expect(a?.taskId).toBe("a");
    expect(indexed()).toEqual([]);
    await hook.complete({ claim: a! });
    expect(indexed()).toEqual(["b"]);
    await hook.complete({ claim: (await hook.claimNext({ worker: "w1" }))! });
    expect(indexed()).toEqual(["c"]);
    const c = (await hook.claimNext({ worker: "w2" }))!;
    await hook.release({ claim: c });
    expect(indexed()).toEqual(["c"]);
    expect(await hook.claimNext({ worker: "w3" })).toMatchObject({ taskId: "c", worker: "w3" });
    expect(await hook.claimNext({ worker: "w4" })).toBeUndefined();
  });

  it("counts a claim file caught mid-write as held, never as free", async () => {
    const root = join(dir.path, "mid-write");
    const hook = createWorkHook({ dir: root });
    await hook.add([{ id: "x" }, { id: "y" }]);
    // What another process's claim looks like between its exclusive create and its write.
    writeFileSync(join(root, "claims", "x.json"), "");
    await expect(hook.claim({ taskId: "x", worker: "w1" })).rejects.toThrow(/task "x" is held by/);
    expect((await hook.ready()).map((task) => task.id)).toEqual(["y"]);
    expect(await hook.claimNext({ worker: "w1" })).toMatchObject({ taskId: "y" });
    expect(await hook.claimNext({ worker: "w2" })).toBeUndefined();
  });
});

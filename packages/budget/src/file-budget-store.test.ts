import { createTempDir, describeBudgetStore } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { createFileBudgetStore, createMemoryBudgetStore } from "./file-budget-store.js";

describeBudgetStore("memory", async () => createMemoryBudgetStore());

describeBudgetStore("files", async () => {
  const dir = createTempDir();
  const store = createFileBudgetStore({ dir: dir.path });
  return {
    ...store,
    close: async () => {
      await store.close();
      dir.remove();
    },
  };
});

describe("createFileBudgetStore", () => {
  it("closes at the end of an `await using` scope: later calls are refused", async () => {
    await using dir = createTempDir();
    let kept: ReturnType<typeof createFileBudgetStore> | undefined;
    {
      await using store = createFileBudgetStore({ dir: dir.path });
      kept = store;
      await store.define({ id: "task", limits: { generation: 10 } });
    }
    await expect(kept.levels(["task"])).rejects.toThrow("is closed");
  });
});

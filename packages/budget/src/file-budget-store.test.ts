import { createTempDir, describeBudgetStore } from "@bulkhead/test-utils";
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

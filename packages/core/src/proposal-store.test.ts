import { createTempDir, describeProposalStore } from "@bulkhead/test-utils";
import { createFileProposalStore, createMemoryProposalStore } from "./proposal-store.js";

describeProposalStore("memory", async () => createMemoryProposalStore());

describeProposalStore("files", async () => {
  const dir = createTempDir();
  return { ...createFileProposalStore(dir.path), close: async () => dir.remove() };
});

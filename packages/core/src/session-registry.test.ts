import { createTempDir, describeSessionRegistry } from "@bulkhead/test-utils";
import { createFileSessionRegistry } from "./session-registry.js";

describeSessionRegistry("files", async () => {
  const dir = createTempDir();
  return { ...createFileSessionRegistry(dir.path), close: async () => dir.remove() };
});

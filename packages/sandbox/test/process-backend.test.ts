import { describeSandboxBackend } from "@bulkhead/test-utils";
import { afterAll } from "vitest";
import { createProcessBackend } from "./process-backend.js";

// The test-only backend passes the same suite as the Docker one (docker-backend.test.ts), so the
// unit tests of the layers above it (session-on-process-backend.test.ts) test what Docker does.
const backend = createProcessBackend();
afterAll(() => backend.dispose());
describeSandboxBackend("process (tests only)", () => ({ backend, image: "none" }));

import { join } from "node:path";
import { createTempDir, describeWorkHook } from "@bulkhead/test-utils";
import { afterAll } from "vitest";
import { createWorkHook } from "./create-work-hook.js";

const dir = createTempDir();
afterAll(() => dir.remove());
let count = 0;
describeWorkHook("files", async () => createWorkHook({ dir: join(dir.path, `hook-${++count}`) }));

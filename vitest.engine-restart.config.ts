// The engine-restart test alone: it stops and starts dockerd, so nothing may run beside it.
import { defineConfig } from "vitest/config";
import base from "./vitest.config.js";

export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ["packages/*/test/**/*.engine-restart.test.ts"],
    exclude: ["**/node_modules/**"],
  },
});

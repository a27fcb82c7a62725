import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const packages = ["core", "budget", "sandbox", "git-lead", "handover", "agents", "gateway", "postgres", "memory", "cli"];

export default defineConfig({
  resolve: {
    // Tests run against the sources; `npm run check:packages` tests the built tarballs.
    alias: Object.fromEntries(
      packages.map((name) => [`@bulkhead/${name}`, fileURLToPath(new URL(`./packages/${name}/src/index.ts`, import.meta.url))]),
    ),
  },
  test: {
    include: ["packages/*/src/**/*.test.ts", "packages/*/test/**/*.test.ts", "tools/*/src/**/*.test.ts", "examples/**/*.test.ts"],
    // Restarts dockerd: its own stage after everything else (vitest.engine-restart.config.ts).
    exclude: ["**/node_modules/**", "**/*.engine-restart.test.ts"],
    globalSetup: ["./tools/test-utils/src/global-setup.ts"],
    pool: "forks",
    // A guard against hangs, not a speed assertion: Docker and git tests do real work.
    testTimeout: 120_000,
    hookTimeout: 300_000,
  },
});

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const packages = ["core", "budget", "sandbox", "git-lead", "handover", "agents", "gateway", "postgres", "memory", "cli"];

// The build injects each package's version (tsup `define`); the tests run the sources, so this
// does the same per package: `__BULKHEAD_VERSION__` in packages/<name>/src becomes its version.
const versionOf = (name: string): string =>
  (JSON.parse(readFileSync(new URL(`./packages/${name}/package.json`, import.meta.url), "utf8")) as { version: string }).version;
const injectVersion = {
  name: "bulkhead-version",
  transform(code: string, id: string) {
    const name = /\/packages\/([^/]+)\/src\//.exec(id)?.[1];
    if (!name || !code.includes("__BULKHEAD_VERSION__")) return undefined;
    return { code: code.replaceAll(/(?<!declare const )\b__BULKHEAD_VERSION__\b/g, JSON.stringify(versionOf(name))), map: null };
  },
};

export default defineConfig({
  plugins: [injectVersion],
  resolve: {
    // Tests run against the sources; `npm run check:packages` tests the built tarballs.
    alias: [
      // A subpath entry (`@bulkhead/core/scope`) is its own source file, matched before the package.
      { find: /^@bulkhead\/core\/scope$/, replacement: fileURLToPath(new URL("./packages/core/src/scope.ts", import.meta.url)) },
      ...packages.map((name) => ({
        find: `@bulkhead/${name}`,
        replacement: fileURLToPath(new URL(`./packages/${name}/src/index.ts`, import.meta.url)),
      })),
    ],
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

// `npm test`: set-up (dependencies, Docker engine), build, type-check, lint, package checks once,
// then the test suite under each Node line of the matrix (22 and 24, fetched when missing), then
// the mutation pass (scripts/mutation.mjs).
import { dirname, join } from "node:path";
import { nodeMatrix } from "./node-versions.mjs";
import { ensurePostgres } from "./postgres.mjs";
import { installDependencies, run, withEngine } from "./run.mjs";

await withEngine(async (engine) => {
  installDependencies();
  run("npm", ["run", "build"]);
  run("npm", ["run", "typecheck"]);
  run("npm", ["run", "lint"]);
  run("npm", ["run", "check:packages"]);
  // The store tests start their own private PostgreSQL; this only makes sure the binaries exist.
  ensurePostgres();
  for (const { major, binary } of nodeMatrix()) {
    console.error(`\n[bulkhead] test suite under Node ${major} (${binary})`);
    // The Node under test first on PATH, so child processes (CLIs with a node shebang) use it too.
    run(binary, [join("node_modules", "vitest", "vitest.mjs"), "run"], {
      env: { ...process.env, PATH: `${dirname(binary)}:${process.env.PATH}` },
    });
  }
  // Tests that can fail: a bounded mutation pass over one key file per package (docs/contributing.md).
  run("npm", ["run", "mutation"]);
  // Restarting dockerd would break every test running beside it, so this test has its own stage,
  // and it restarts only an engine this run started (as in CI) unless told it may.
  if (engine.started || process.env.BULKHEAD_TEST_ENGINE_RESTART === "1") {
    run("npx", ["vitest", "run", "--config", "vitest.engine-restart.config.ts"]);
  } else {
    console.error(
      "\n[bulkhead] not running the engine-restart test: this run did not start the Docker engine, so it leaves it alone (BULKHEAD_TEST_ENGINE_RESTART=1 allows it).",
    );
  }
});

// `npm test`: set-up (dependencies, Docker engine), build, type-check, lint, package checks, tests.
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
  run("npx", ["vitest", "run"]);
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

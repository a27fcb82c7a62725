// Small helpers for the root scripts: run a command, fail loudly, stop what we started.
import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";

export function run(command, args, options = {}) {
  console.error(`\n[bulkhead] $ ${[command, ...args].join(" ")}`);
  const result = spawnSync(command, args, { stdio: "inherit", ...options });
  if (result.status !== 0) {
    const error = new Error(`${command} ${args.join(" ")} failed with exit code ${result.status ?? result.signal}`);
    error.exitCode = result.status ?? 1;
    throw error;
  }
}

/** Runs `main` with the Docker engine ensured; stops the engine at exit if we started it. */
export async function withEngine(main) {
  const { ensureDockerEngine } = await import("./docker-engine.mjs");
  let engine;
  const stop = async () => engine?.stop();
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.once(signal, async () => {
      await stop();
      process.exit(130);
    });
  }
  try {
    engine = await ensureDockerEngine();
    await main(engine);
  } catch (error) {
    console.error(`\n[bulkhead] ${error.message}`);
    process.exitCode = error.exitCode ?? 1;
  } finally {
    await stop();
  }
}

/** `npm ci` on a fresh clone or in CI; skipped when node_modules matches the lockfile. */
export function installDependencies(options = {}) {
  const fresh = process.env.CI === "true" || !isInstalled();
  if (fresh) run("npm", ["ci", "--no-audit", "--no-fund"], options);
}

function isInstalled() {
  // npm writes this file last; when it is older than the lockfile, the install is stale.
  const installed = statSync("node_modules/.package-lock.json", { throwIfNoEntry: false });
  const lock = statSync("package-lock.json", { throwIfNoEntry: false });
  return installed !== undefined && lock !== undefined && installed.mtimeMs >= lock.mtimeMs;
}

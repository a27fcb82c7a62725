// `npm test`: set-up (dependencies, Docker engine), build, type-check, lint, package checks, tests.
import { installDependencies, run, withEngine } from "./run.mjs";

await withEngine(async () => {
  installDependencies();
  run("npm", ["run", "build"]);
  run("npm", ["run", "typecheck"]);
  run("npm", ["run", "lint"]);
  run("npm", ["run", "check:packages"]);
  run("npx", ["vitest", "run"]);
});

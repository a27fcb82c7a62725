// `npm run demo`: set-up (dependencies, Docker engine), build, then run the example.
import { installDependencies, run, withEngine } from "./run.mjs";

await withEngine(async () => {
  installDependencies();
  run("npm", ["run", "build"]);
  run("npx", ["tsx", "--tsconfig", "tsconfig.check.json", "examples/rate-limit/index.ts"]);
});

// `npm run demo [-- --json]`: set-up (dependencies, Docker engine), build, then run the example:
// the real Claude Code CLI in a sealed session, through the gateway, against a scripted model.
// With --json, everything but the one JSON document goes to stderr.
import { installDependencies, run, withEngine } from "./run.mjs";

const args = process.argv.slice(2);
const quiet = args.includes("--json") ? { stdio: ["inherit", process.stderr, "inherit"] } : {};

await withEngine(async () => {
  installDependencies(quiet);
  run("npm", ["run", "build"], quiet);
  run("npx", ["tsx", "--tsconfig", "tsconfig.check.json", "examples/rate-limit/index.ts", ...args]);
});

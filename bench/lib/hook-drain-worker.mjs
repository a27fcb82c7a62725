// One draining process for bench/work-hook: loads everything, says "ready", waits for "go" on
// stdin, then claims until nothing is left and prints the ids it won as JSON.
//   hook-drain-worker.mjs hook <dir> <worker>    claimNext on the file work hook
//   hook-drain-worker.mjs floor <dir> <tasks>    the floor: mkdir claims/<id> over every id in order
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createWorkHook } from "@bulkhead/git-lead";

const [mode, dir, arg] = process.argv.slice(2);
const hook = mode === "hook" ? createWorkHook({ dir }) : undefined;
process.stdout.write("ready\n");
process.stdin.once("data", async () => {
  const won = [];
  if (hook) {
    for (let claim = await hook.claimNext({ worker: arg }); claim; claim = await hook.claimNext({ worker: arg })) won.push(claim.taskId);
  } else {
    const claims = join(dir, "claims");
    for (let index = 0; index < Number(arg); index++) {
      const id = `t${String(index).padStart(5, "0")}`;
      try {
        mkdirSync(join(claims, id));
        won.push(id);
      } catch (error) {
        if (error.code !== "EEXIST") throw error;
      }
    }
  }
  process.stdout.write(`${JSON.stringify(won)}\n`);
  process.exit(0);
});

// A process that tries to claim every ready task on a hook once; prints the ids it won.
//   hook-worker.ts <dir> <worker>
import { createWorkHook } from "../src/index.js";

const [dir, worker] = process.argv.slice(2) as [string, string];
const hook = createWorkHook({ dir });
const won: string[] = [];
for (const task of await hook.tasks()) {
  try {
    await hook.claim({ taskId: task.id, worker });
    won.push(task.id);
  } catch (error) {
    if ((error as { code?: string }).code !== "CLAIM_REFUSED") throw error;
  }
}
process.stdout.write(JSON.stringify(won));

// A second process using the same proposal store: `propose <dir> <worker> <count>` or `approve <dir> <worker> <ids...>`.
import { createFileProposalStore, createMultiRepoGuard } from "../src/index.js";

const [command, directory, worker, ...rest] = process.argv.slice(2);
const guard = createMultiRepoGuard({ primaryRepo: "backend-api", store: createFileProposalStore(directory!) });
const outcome: Record<string, string> = {};
if (command === "propose") {
  for (let index = 0; index < Number(rest[0]); index++) {
    const result = await guard.propose({
      repo: "frontend",
      file: `src/${worker}-${index}.ts`,
      diff: `+ ${worker} ${index}`,
      author: worker,
    });
    outcome[`${worker}-${index}`] = result.status;
  }
} else {
  for (const id of rest) {
    try {
      await guard.approve({ id, by: worker! });
      outcome[id] = "approved";
    } catch (error) {
      outcome[id] = (error as { code: string }).code;
    }
  }
}
process.stdout.write(JSON.stringify(outcome));

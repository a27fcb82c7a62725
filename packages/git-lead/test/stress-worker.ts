// One worker of the git-lead stress test: writes its files and submits each, one by one, with a
// stable id, so a restarted worker picks up where it was killed.
//   stress-worker.ts <repo> <worker> <count>
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createCommitLead } from "../src/index.js";

const [repo, worker, count] = process.argv.slice(2) as [string, string, string];
const lead = await createCommitLead({ dir: repo, author: { name: "Lead", email: "lead@example.com" }, lock: { leaseMs: 5000 } });
for (let index = 0; index < Number(count); index++) {
  const id = `${worker}-${index}`;
  if (existsSync(join(repo, ".git", "bulkhead", "results", `${id}.json`))) continue;
  const path = `${worker}/f${index}.txt`;
  mkdirSync(join(repo, worker), { recursive: true });
  writeFileSync(join(repo, path), `${worker} submission ${index}\n`);
  const result = await lead.submit({ id, issueId: id, worker, files: [path], message: `Submission ${index} of ${worker}` });
  process.stdout.write(`${JSON.stringify({ id, status: result.status })}\n`);
}
await lead.close();

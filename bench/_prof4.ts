import * as fs from "node:fs";
import { join } from "node:path";
import { createCommitLead } from "@bulkhead/git-lead";
const dir = join(import.meta.dirname, ".data", "lead-prof");
fs.rmSync(dir, { recursive: true, force: true });
fs.cpSync(join(import.meta.dirname, ".data", "lead-10000"), dir, { recursive: true });
const lead = await createCommitLead({ dir, author: { name: "a", email: "b" } });
const t = Date.now();
for (let round = 0; round < 30; round++) {
  const path = `src/pkg${round}/file${round * 100}.ts`;
  fs.writeFileSync(join(dir, path), `x${round}\n`);
  await lead.submit({ issueId: `P-${round}`, worker: "w", files: [path], message: "m" });
}
console.log("avg", (Date.now() - t) / 30);

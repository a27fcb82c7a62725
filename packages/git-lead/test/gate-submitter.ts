// A worker process with gates of its own: creates a lead over <repo> with the command gates given
// as JSON, submits <file> under <id>, and prints the outcome as JSON.
//   gate-submitter.ts <repo> <gates-json> <file> <id>
import { createCommitLead } from "../src/create-commit-lead.js";

const [repo, gates, file, id] = process.argv.slice(2) as [string, string, string, string];
const lead = await createCommitLead({ dir: repo, author: { name: "Lead", email: "lead@example.com" }, gates: JSON.parse(gates) });
const result = await lead.submit({ issueId: `GATE-${id}`, worker: "submitter", files: [file], message: `from ${id}`, id });
await lead.close();
process.stdout.write(JSON.stringify(result));

// One simulated host of the shared-remote tests: its own process, its own clone of the remote and
// its own BULKHEAD_HOME. Lands <count> issues on <remote> through a lead over <clone>, each
// issue one new file, and prints `RESULT <id> <status> <sha or reason>` per issue, then `DONE`.
// Run again after a kill, it resubmits the same ids: what landed is answered, the rest lands.
//   landing-host.ts <clone> <remote> <host> <count> [postgres-url for the landing lock]
// KILL_AT=<issue> with KILL_MARKER=<file>: the marker is created just before that issue is
// submitted, and the test's git wrapper SIGKILLs this process around the push that sees it.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ChangedPath } from "@bulkhead/core";
import { createCommitLead } from "../src/create-commit-lead.js";
import type { LandingLock } from "../src/remote-landing.js";

const [clone, remote, host, countArgument, lockUrl] = process.argv.slice(2) as [string, string, string, string, string?];
const count = Number(countArgument);
const killAt = process.env.KILL_AT === undefined ? undefined : Number(process.env.KILL_AT);

let lock: (LandingLock & { close(): Promise<void> }) | undefined;
if (lockUrl) {
  const { createPostgresLandingLock } = await import("../../postgres/src/postgres-landing-lock.js");
  lock = createPostgresLandingLock({ connectionString: lockUrl, maxConnections: 2 });
}
const lead = await createCommitLead({
  dir: clone,
  branch: "main",
  author: { name: `Lead ${host}`, email: `lead-${host}@example.com` },
  remote: { url: remote, ...(lock && { lock }) },
});
for (let index = 0; index < count; index++) {
  const id = `h${host}-${String(index).padStart(3, "0")}`;
  const bytes = Buffer.from(`host ${host}, issue ${index}\n`);
  const oid = createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");
  const change: ChangedPath = {
    path: `host-${host}/issue-${index}.txt`,
    kind: "added",
    entry: { type: "file", mode: "100644", bytes, oid },
  };
  if (index === killAt && process.env.KILL_MARKER) writeFileSync(process.env.KILL_MARKER, "");
  const result = await lead.submit({ id, issueId: `ISSUE-${id}`, worker: `worker-${host}`, changes: [change], message: `Issue ${id}` });
  process.stdout.write(`RESULT ${id} ${result.status} ${result.status === "committed" ? result.sha : result.reason}\n`);
}
await lead.close();
await lock?.close();
// Pushes that lost (another host landed first) and were rebuilt: the journal's aborted entries.
const journal = readFileSync(join(clone, "bulkhead", "journal.jsonl"), "utf8");
const lost = journal.split("\n").filter((line) => line.includes('"type":"aborted"') && line.includes("before this push landed")).length;
process.stdout.write(`DONE ${JSON.stringify({ host, lost })}\n`);

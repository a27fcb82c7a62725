// One contender for a lead lock judged stale: waits for the common start, tries once, reports
// that it tried, and, if it won, holds the lock until every contender has tried (so a slow
// starter meets a live lead, never a free lock). Prints its token or "none".
//   lock-contender.ts <state-dir> <start-at-ms> <contenders>
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { tryAcquireLeadLock } from "../src/lead-lock.js";

const [stateDir, startAt, contenders] = process.argv.slice(2) as [string, string, string];
const tried = join(stateDir, "..", `${stateDir.split("/").at(-1)}-tried`);
mkdirSync(tried, { recursive: true });
while (Date.now() < Number(startAt)) await sleep(1);
const lock = await tryAcquireLeadLock(stateDir, { leaseMs: 60_000 });
writeFileSync(join(tried, randomBytes(6).toString("hex")), "");
process.stdout.write(lock ? String(lock.token) : "none");
if (lock) {
  for (let waited = 0; readdirSync(tried).length < Number(contenders) && waited < 120_000; waited += 20) await sleep(20);
  await lock.assertCurrent();
  await lock.release();
}

// One contender for a lead lock judged stale: waits for the common start, tries once, and holds
// what it got for a while so that the others see a live lead. Prints its token or "none".
import { setTimeout as sleep } from "node:timers/promises";
import { tryAcquireLeadLock } from "../src/lead-lock.js";

const [stateDir, startAt] = process.argv.slice(2) as [string, string];
while (Date.now() < Number(startAt)) await sleep(1);
const lock = await tryAcquireLeadLock(stateDir, { leaseMs: 60_000 });
process.stdout.write(lock ? String(lock.token) : "none");
if (lock) {
  await sleep(1500);
  await lock.assertCurrent();
  await lock.release();
}

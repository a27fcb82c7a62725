// Whether a process is gone, for tests that check a gate's processes were killed.
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** Gone, or a zombie nobody reaped yet (a killed grandchild reparented to a PID 1 that does not reap). */
export function isGone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.startsWith("Z") === true;
  } catch {
    return true;
  }
}

/** Waits until `condition` holds; the test runner's own timeout is the only bound. */
export async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(10);
}

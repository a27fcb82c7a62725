import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { isProcessAlive, tryAcquireFileLock, writeFileAtomicSync, type FileLockHolder } from "@bulkhead/core";
import { LeadFencedError } from "./git-lead-errors.js";

/** A held lead lock. Its fencing token grows with every takeover. */
export interface LeadLock {
  readonly token: number;
  /** Extends the lease. Throws {@link LeadFencedError} if another lead took over. */
  renew(): Promise<void>;
  /** Renews only when less than half of the lease is left. */
  renewIfDue(): Promise<void>;
  /** Throws {@link LeadFencedError} unless this lock's token is still the current one. */
  assertCurrent(): Promise<void>;
  release(): Promise<void>;
}

function readFence(path: string): number {
  try {
    return Number(readFileSync(path, "utf8")) || 0;
  } catch {
    return 0;
  }
}

/**
 * Tries to become the lead of a repository: core's file lock (`lead.lock` in `stateDir`; a
 * holder whose process is gone or whose lease ran out is taken over) plus a fencing token in
 * `fence` that only the holder increments, so tokens are unique and a lead that was taken over
 * can tell before it writes. Returns undefined when a live lead holds it.
 */
export async function tryAcquireLeadLock(stateDir: string, { leaseMs = 30_000 } = {}): Promise<LeadLock | undefined> {
  await mkdir(stateDir, { recursive: true });
  const fencePath = join(stateDir, "fence");
  const lock = tryAcquireFileLock(join(stateDir, "lead.lock"), { staleMs: leaseMs });
  if (!lock) return undefined;
  const token = readFence(fencePath) + 1;
  writeFileAtomicSync(fencePath, String(token));
  let renewedAt = Date.now();
  const assertCurrent = async () => {
    const current = readFence(fencePath);
    if (current !== token) throw new LeadFencedError(token, current);
  };
  const renew = async () => {
    await assertCurrent();
    if (!lock.renew()) throw new LeadFencedError(token, readFence(fencePath));
    renewedAt = Date.now();
  };
  return {
    token,
    assertCurrent,
    renew,
    async renewIfDue() {
      if (Date.now() - renewedAt > leaseMs / 2) await renew();
    },
    async release() {
      lock.release();
    },
  };
}

/**
 * Whether a live lead holds the lock in `stateDir`, read without taking or touching it (for
 * `status()`): its holder's lease has not run out and, on this host, its process exists. A lock
 * file that cannot be read (being written) counts as live.
 */
export function isLeadLockLive(stateDir: string): boolean {
  let text: string;
  try {
    text = readFileSync(join(stateDir, "lead.lock"), "utf8");
  } catch {
    return false;
  }
  let holder: Partial<FileLockHolder>;
  try {
    holder = JSON.parse(text) as Partial<FileLockHolder>;
  } catch {
    return true;
  }
  if (typeof holder.expiresAt !== "number" || holder.expiresAt < Date.now()) return false;
  return (holder.host ?? hostname()) !== hostname() || isProcessAlive(Number(holder.pid));
}

import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { LeadFencedError } from "./git-lead-errors.js";

interface Holder {
  pid: number;
  token: number;
  expiresAt: number;
}

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

/** Synchronous write-then-rename: these are a few bytes, and the thread pool would cost more. */
function writeAtomicSync(path: string, text: string): void {
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  const descriptor = openSync(temporary, "wx");
  try {
    writeSync(descriptor, text);
    fsyncSync(descriptor);
  } finally {
    closeSync(descriptor);
  }
  renameSync(temporary, path);
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Tries to become the lead of a repository: a lock file created with O_EXCL in `stateDir`
 * holding the owner's pid, lease and fencing token. A lock whose process is gone or whose lease
 * expired is moved aside (only one contender's rename wins) and taken over; every acquisition
 * increments the fencing token, so a lead that was taken over can tell before it writes.
 * Returns undefined when a live lead holds it.
 */
export async function tryAcquireLeadLock(stateDir: string, { leaseMs = 30_000 } = {}): Promise<LeadLock | undefined> {
  await mkdir(stateDir, { recursive: true });
  const lockPath = join(stateDir, "lead.lock");
  const fencePath = join(stateDir, "fence");
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      closeSync(openSync(lockPath, "wx"));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      let holder: Holder | undefined;
      try {
        holder = JSON.parse(readText(lockPath) ?? "") as Holder;
      } catch {
        holder = undefined;
      }
      if (holder && alive(holder.pid) && holder.expiresAt > Date.now()) return undefined;
      // An empty lock is being written by its creator right now, unless it is older than a lease.
      if (!holder && Date.now() - ((await stat(lockPath).catch(() => undefined))?.mtimeMs ?? 0) < leaseMs) return undefined;
      const aside = `${lockPath}.stale.${randomBytes(4).toString("hex")}`;
      if (
        await rename(lockPath, aside).then(
          () => true,
          () => false,
        )
      )
        await rm(aside, { force: true });
      continue;
    }
    const token = Number(readText(fencePath) ?? "0") + 1;
    writeAtomicSync(fencePath, String(token));
    let expiresAt = 0;
    const write = (): void => {
      expiresAt = Date.now() + leaseMs;
      writeAtomicSync(lockPath, JSON.stringify({ pid: process.pid, token, expiresAt } satisfies Holder));
    };
    write();
    const assertCurrent = async () => {
      const current = Number(readText(fencePath) ?? "0");
      if (current !== token) throw new LeadFencedError(token, current);
    };
    const renew = async () => {
      await assertCurrent();
      write();
    };
    return {
      token,
      assertCurrent,
      renew,
      async renewIfDue() {
        if (expiresAt - Date.now() < leaseMs / 2) await renew();
      },
      async release() {
        let holder: Holder | undefined;
        try {
          holder = JSON.parse(readText(lockPath) ?? "") as Holder;
        } catch {
          holder = undefined;
        }
        if (holder?.token === token) rmSync(lockPath, { force: true });
      },
    };
  }
  return undefined;
}

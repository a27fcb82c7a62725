import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { mkdir } from "node:fs/promises";
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

/** A breaker is held for a few file operations; one older than this belongs to a dead process. */
const BREAKER_STALE_MS = 5_000;

/**
 * Removes a lock judged stale, unless it changed since it was judged. Contenders take turns
 * through a breaker directory (mkdir is atomic), and the lock goes only while it is still the very
 * file that was judged (same inode, same content): a lock another contender has taken meanwhile
 * is never removed. Returns false when another contender is breaking it right now.
 */
export function breakStaleLock(lockPath: string, judged: { text: string | undefined; ino: number | undefined }): boolean {
  const breaker = `${lockPath}.break`;
  try {
    mkdirSync(breaker);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    const age = Date.now() - (statSync(breaker, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
    if (age > BREAKER_STALE_MS) rmSync(breaker, { recursive: true, force: true });
    return false;
  }
  try {
    const now = { text: readText(lockPath), ino: statSync(lockPath, { throwIfNoEntry: false })?.ino };
    if (now.ino !== undefined && now.ino === judged.ino && now.text === judged.text) rmSync(lockPath, { force: true });
    return true;
  } finally {
    rmSync(breaker, { recursive: true, force: true });
  }
}

/**
 * Tries to become the lead of a repository: a lock file created with O_EXCL in `stateDir`
 * holding the owner's pid, lease and fencing token. A lock whose process is gone or whose lease
 * expired is broken (one contender at a time, and only while it is still the lock that was
 * judged) and taken over. Only the holder of the lock increments the fencing token, so tokens are
 * unique, and a lead that was taken over can tell before it writes.
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
      const judged = { text: readText(lockPath), ino: statSync(lockPath, { throwIfNoEntry: false })?.ino };
      let holder: Holder | undefined;
      try {
        holder = JSON.parse(judged.text ?? "") as Holder;
      } catch {
        holder = undefined;
      }
      if (holder && alive(holder.pid) && holder.expiresAt > Date.now()) return undefined;
      // An empty lock is being written by its creator right now, unless it is older than a lease.
      if (!holder && Date.now() - (statSync(lockPath, { throwIfNoEntry: false })?.mtimeMs ?? 0) < leaseMs) return undefined;
      if (!breakStaleLock(lockPath, judged)) return undefined;
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

import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { isProcessAlive, withFileLock, writeFileAtomic, type SandboxBackend, type SandboxInspection } from "@bulkhead/core";
import { SessionContainerMissingError, sessionFault } from "./sandbox-errors.js";
import { sessionDir } from "./session-state-store.js";

/** What a paused read needs of a session: its id, its container on its backend, and its state directory. */
export interface PausableSession {
  readonly id: string;
  readonly home: string;
  readonly backend: SandboxBackend;
  /** The backend's name for the container. */
  readonly instance: string;
}

const fault = (session: PausableSession, step: string) => (error: unknown) => {
  throw sessionFault(error, step, session.id, session.backend.faultOf(error));
};

/** A pause holder's marker, written (atomically) before the container is paused. */
interface PauseMarker {
  pid: number;
  host: string;
  token: string;
  at: string;
}

/** The pauses this process holds right now: a marker with our pid but another token is stale. */
const held = new Set<string>();

const markerDir = (session: PausableSession) => join(sessionDir(session.home, session.id), "pause");
const lockPath = (session: PausableSession) => join(sessionDir(session.home, session.id), ".pause.lock");

function readMarkers(session: PausableSession): { path: string; marker: PauseMarker | undefined }[] {
  let names: string[];
  try {
    names = readdirSync(markerDir(session)).filter((name) => name.endsWith(".json"));
  } catch {
    return [];
  }
  return names.map((name) => {
    const path = join(markerDir(session), name);
    try {
      return { path, marker: JSON.parse(readFileSync(path, "utf8")) as PauseMarker };
    } catch {
      // Unreadable (a torn write cannot happen: markers are renamed into place): treat as stale.
      return { path, marker: undefined };
    }
  });
}

/** A holder is alive when its process is, and, when it is this process, the pause is still held. */
function alive(marker: PauseMarker | undefined): boolean {
  if (!marker) return false;
  // Another host's pid cannot be checked here: such a marker is kept (a shared home is not supported).
  if (marker.host !== hostname()) return true;
  if (marker.pid === process.pid) return held.has(marker.token);
  return isProcessAlive(marker.pid);
}

async function inspectState(session: PausableSession, step: string): Promise<SandboxInspection["state"]> {
  const info = await session.backend.inspect(session.instance).catch(fault(session, step));
  if (!info) throw new SessionContainerMissingError(step, session.id);
  return info.state;
}

/** Removes dead holders' markers; unpauses the container when that leaves none and it is paused. Under the pause lock. */
async function clearStale(session: PausableSession, step: string): Promise<{ live: number; unpaused: boolean }> {
  const markers = readMarkers(session);
  const stale = markers.filter((entry) => !alive(entry.marker));
  for (const entry of stale) rmSync(entry.path, { force: true });
  const live = markers.length - stale.length;
  if (stale.length === 0 || live > 0) return { live, unpaused: false };
  const state = await inspectState(session, step);
  if (state !== "paused") return { live, unpaused: false };
  const outcome = await session.backend.unpause(session.instance).catch(fault(session, step));
  return { live, unpaused: outcome === "unpaused" };
}

/**
 * Undoes a pause whose holder died (a controller killed during a paused read): removes its marker
 * and unpauses the container if no live holder remains. Returns true when it unpaused. Called by
 * `reconcile`, `session.start()`, an exec that finds the container paused, and every paused read.
 */
export async function recoverStalePause(session: PausableSession, step = "unpause"): Promise<boolean> {
  if (readMarkers(session).length === 0) return false;
  return withFileLock(lockPath(session), async () => (await clearStale(session, step)).unpaused);
}

/** Whether a live bulkhead holder (this process or another) pauses the container right now. */
export function pauseHolders(session: PausableSession): number[] {
  return readMarkers(session)
    .filter((entry) => alive(entry.marker))
    .map((entry) => entry.marker!.pid);
}

/**
 * Runs host-side work on the workspace with the session's container paused (when it runs), so
 * nothing in it changes meanwhile (as `session.changes()` needs). Every paused read of a workspace goes
 * through here. Crash-safe: a marker naming this process is written (atomically, in the session
 * directory) before the pause and removed after the unpause; if this process dies in between,
 * the next `reconcile`, `start`, exec or paused read finds the marker's process gone and unpauses.
 * Several holders (processes or calls) may overlap: the last one out unpauses. A container that
 * was paused outside bulkhead is read as it is and left paused.
 */
export async function withSessionPaused<TResult>(session: PausableSession, work: () => Promise<TResult>): Promise<TResult> {
  const token = randomBytes(8).toString("hex");
  const marker = join(markerDir(session), `${process.pid}-${token}.json`);
  const entered = await withFileLock(lockPath(session), async () => {
    const { live } = await clearStale(session, "pause").catch((error: unknown) => {
      // No container: nothing can write to the workspace, so it is read as it is.
      if (SessionContainerMissingError.isInstance(error)) return { live: 0 };
      throw error;
    });
    const state = await inspectState(session, "pause").catch((error: unknown) => {
      if (SessionContainerMissingError.isInstance(error)) return undefined;
      throw error;
    });
    if (!state) return false;
    if (state !== "running" && state !== "paused") return false;
    // Paused with no bulkhead holder: someone paused it outside bulkhead; leave that to them.
    if (state === "paused" && live === 0) return false;
    held.add(token);
    await writeFileAtomic(marker, JSON.stringify({ pid: process.pid, host: hostname(), token, at: new Date().toISOString() }), {
      mode: 0o600,
    });
    if (state !== "paused")
      await session.backend.pause(session.instance).catch((error: unknown) => {
        held.delete(token);
        rmSync(marker, { force: true });
        throw sessionFault(error, "pause", session.id, session.backend.faultOf(error));
      });
    return true;
  });
  if (!entered) return work();
  try {
    return await work();
  } finally {
    held.delete(token);
    await withFileLock(lockPath(session), async () => {
      // Other holders' work still needs the container still; the last one out unpauses. The marker
      // goes only once the container runs again: if the unpause fails (the engine went away), the
      // marker stays, stale from now on, and the next call that finds it unpauses.
      const others = readMarkers(session).filter((entry) => entry.path !== marker && alive(entry.marker));
      if (others.length === 0)
        await session.backend.unpause(session.instance).catch((error: unknown) => {
          // Gone: nothing to undo (not paused any more is "not-paused"). Anything else keeps the marker.
          if (session.backend.faultOf(error) !== "missing") throw error;
        });
      rmSync(marker, { force: true });
    }).catch(() => undefined);
  }
}

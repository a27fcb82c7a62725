import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { withFileLock, writeFileAtomic } from "@bulkhead/core";
import type { GrantedDevices } from "./container-spec.js";
import type { GatewayRoute } from "./gateway-route.js";

/** A job record, kept in the session state so any process can find it again. */
export interface JobRecord {
  id: string;
  command: string[];
  startedAt: string;
  /** With `worktree: true`: the job's own branch, checked out in a worktree of every cloned repo. */
  worktree?: { branch: string; path: string };
  endedAt?: string;
  exitCode?: number;
  /** When the container the job runs in was started: a different value later means it restarted. */
  containerStartedAt?: string;
  /** The job ended without an exit code: its container stopped or restarted while it ran. */
  lost?: boolean;
  /** Why bulkhead stopped the job, when it did: the workspace went over `resources.diskMb`. */
  stopped?: "disk-limit";
}

/** What a session remembers on disk, beside its container's labels. */
export interface SessionState {
  id: string;
  project: string;
  configHash: string;
  tag: string;
  createdAt: string;
  workspace: string;
  user: string;
  workdir: string;
  env: Record<string, string>;
  agent?: { command: string[]; env?: Record<string, string> };
  granted: GrantedDevices;
  repos: { name: string; mode: "clone" | "mount-ro"; source: string; branch: string; baseSha: string }[];
  jobs: JobRecord[];
  /** The session's gateway route, when it was created with one: its only way out. */
  gateway?: GatewayRoute;
  /** `resources.diskMb` in bytes: the most host disk the workspace may use. Absent: no limit. */
  diskLimitBytes?: number;
}

/** Where sessions live when no `home` is given: `$BULKHEAD_HOME`, else `~/.bulkhead`. */
export const defaultHome = (): string => process.env.BULKHEAD_HOME ?? join(homedir(), ".bulkhead");

/** A session's own directory: its state file, locks and workspace. */
export const sessionDir = (home: string, id: string): string => join(home, "sessions", id);

/** Reads a session's state file. */
export function readSessionState(home: string, id: string): SessionState {
  return JSON.parse(readFileSync(join(sessionDir(home, id), "state.json"), "utf8")) as SessionState;
}

/** Writes a session's state file in one step (a reader never sees half of it). */
export async function writeSessionState(home: string, state: SessionState): Promise<void> {
  await writeFileAtomic(join(sessionDir(home, state.id), "state.json"), JSON.stringify(state, null, 2), { mode: 0o600 });
}

/** Changes the state file under a lock, so several processes can record jobs; returns the new state. */
export async function updateSessionState(home: string, id: string, change: (state: SessionState) => void): Promise<SessionState> {
  return withFileLock(join(sessionDir(home, id), ".state.lock"), async () => {
    const state = readSessionState(home, id);
    change(state);
    await writeSessionState(home, state);
    return state;
  });
}

import { hostname } from "node:os";
import { InvalidArgumentError, type SessionRecord } from "@bulkhead/core";
import type { SessionRegistration } from "@bulkhead/sandbox";

/**
 * How long a host's confirmation of its sessions holds (`session list --stale-after`): a running
 * entry its host has not confirmed for longer is listed as `stale`. Hosts confirm when they run
 * `session list`, `session heartbeat` (for a timer) or `session start`. @default 15 minutes
 */
export const STALE_AFTER_MS = 15 * 60_000;

/**
 * Runs `work` with the team's session registry when `BULKHEAD_STORE` names a PostgreSQL database
 * (this host's name: `BULKHEAD_HOST`, else the hostname), or with undefined when no store is
 * configured. @bulkhead/postgres (and `pg`) is loaded only then, and the pool is closed after.
 */
export async function withTeamRegistration<TResult>(
  work: (registration: (SessionRegistration & { host: string }) | undefined) => Promise<TResult>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<TResult> {
  const url = env.BULKHEAD_STORE;
  if (url === undefined || url === "") return work(undefined);
  if (!/^postgres(ql)?:\/\//.test(url))
    throw new InvalidArgumentError(
      "BULKHEAD_STORE",
      `expected a postgres:// connection string, got ${JSON.stringify(url)}: fix or unset it`,
    );
  const { createPostgresSessionRegistry } = await import("@bulkhead/postgres");
  const registry = createPostgresSessionRegistry({ connectionString: url, maxConnections: 2 });
  try {
    return await work({ registry, host: env.BULKHEAD_HOST || hostname() });
  } finally {
    await registry.close();
  }
}

/** What a host's heartbeat did with its entries in the team's registry. */
export interface Heartbeat {
  /** Entries of this host confirmed from its own sessions (their `updatedAt` is now). */
  confirmed: string[];
  /**
   * Entries of this host that no session under this `BULKHEAD_HOME` matches: left as they are
   * (another home of the same host may hold them), so they go stale unless confirmed from there.
   */
  unconfirmed: string[];
}

/**
 * The heartbeat: this host confirms its entries in the team's registry from its own sessions
 * (`listSessions()`), each updated to its container's state (running or paused: `running`; else
 * `stopped`), which stamps it with the registry's clock. Nothing is removed.
 */
export async function confirmOwnSessions(
  registration: SessionRegistration & { host: string },
  local: readonly { id: string; container: string }[],
): Promise<Heartbeat> {
  const { registry, host } = registration;
  const byId = new Map(local.map((session) => [session.id, session.container]));
  const heartbeat: Heartbeat = { confirmed: [], unconfirmed: [] };
  for (const record of await registry.list({ host })) {
    if (record.state === "removed") continue;
    const container = byId.get(record.id);
    if (container === undefined || container === "missing") {
      heartbeat.unconfirmed.push(record.id);
      continue;
    }
    await registry.update(record.id, { host, state: container === "running" || container === "paused" ? "running" : "stopped" });
    heartbeat.confirmed.push(record.id);
  }
  return heartbeat;
}

/** A team session as `session list` shows it: `stale` when its host has not confirmed a running entry in time. */
export type TeamSession = Omit<SessionRecord, "state"> & {
  state: SessionRecord["state"] | "stale";
  /** What the registry holds, when `state` says `stale`. */
  recordedState?: SessionRecord["state"];
  /** When its host last confirmed (or changed) the entry, ISO 8601. */
  confirmedAt: string;
};

/**
 * Marks the running entries whose host has not confirmed them within `staleAfterMs` as `stale`:
 * the host may be gone (a dead CI runner), so `running` would be a claim nobody stands behind.
 */
export function markStale(
  records: readonly SessionRecord[],
  { staleAfterMs = STALE_AFTER_MS, now = Date.now() }: { staleAfterMs?: number; now?: number } = {},
): TeamSession[] {
  return records.map((record) => {
    const confirmedAt = new Date(record.updatedAt).toISOString();
    return record.state === "running" && now - record.updatedAt > staleAfterMs
      ? { ...record, state: "stale", recordedState: record.state, confirmedAt }
      : { ...record, confirmedAt };
  });
}

/** `2h 5m ago`, `40s ago`: how long since a host confirmed, for people. */
export function ago(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ago`;
  const hours = Math.floor(minutes / 60);
  return hours < 48 ? `${hours}h ${minutes % 60}m ago` : `${Math.floor(hours / 24)} days ago`;
}

import { join } from "node:path";
import type { UsageReport } from "@bulkhead/core";
import type { Session } from "@bulkhead/sandbox";
import type { DispatchMemoryRecord } from "./dispatch-memory.js";
import type { SocketIdentity } from "./gateway-socket.js";

/**
 * What `dispatch` (and each `continue`) records for `harvest` and `continue`: on the host, beside
 * the session's state, never in the workspace, where the agent could rewrite the spec path or the
 * report it is judged by.
 */
export interface DispatchRecord {
  spec: string;
  job: string;
  report: UsageReport;
  stoppedBy: string | null;
  /** The built-in provider that ran, or null for the project's agent command. */
  agent: string | null;
  /** The project memory the agent was given (ids), and what did not fit. */
  memory?: DispatchMemoryRecord;
  /**
   * The gateway socket the session is sealed to, where `continue` serves a gateway again (the
   * box's mount of its directory is fixed at creation). Absent for the project's agent command.
   */
  gatewaySocket?: string;
  /**
   * The device and inode of that socket when dispatch created it (before the agent ran): `continue`
   * connects only to this socket, never to a link or another socket found in its place.
   */
  gatewaySocketId?: SocketIdentity;
  /**
   * Tool-result tokens the gateway charged to the tool-call budget in the last run (inside the
   * report's context read: the upstream counts them as prompt tokens). The handover shows them
   * on its tool-call line.
   */
  toolResultTokens?: number;
  /** The continuations so far, oldest first. */
  continuations?: { job: string; mode: "extend" | "spec"; spec: string; approvedBy?: string; extensions?: Record<string, number> }[];
}

/** Where a session's dispatch record is kept: `<home>/sessions/<id>/dispatch.json`. */
export const dispatchRecordPath = (session: Pick<Session, "home" | "id">): string =>
  join(session.home, "sessions", session.id, "dispatch.json");

/**
 * The directory of a session's own gateway socket, `<home>/sessions/<id>/gateway` (mounted into
 * the box): dispatch moves its socket there, and continue knows a socket there as dispatch's own.
 */
export const sessionGatewayDir = (session: Pick<Session, "home" | "id">): string => join(session.home, "sessions", session.id, "gateway");

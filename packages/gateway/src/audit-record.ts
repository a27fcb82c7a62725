import type { BudgetKind } from "@bulkhead/budget";
import type { Usage } from "@bulkhead/core";
import type { GatewayApi } from "./wire-format.js";

/** How a call through the gateway ended. */
export const CALL_OUTCOMES = [
  /** The upstream answered and the answer reached the client whole. */
  "ok",
  /** The gateway answered with an error before forwarding (a budget, the tool policy). */
  "refused",
  /** The gateway ended the stream at the generation budget, as the API does at its output limit. */
  "stopped",
  /** The upstream answered with an error status; passed on, the reservation released. */
  "upstream-error",
  /** The upstream did not answer, or went silent mid-stream, within the timeout. */
  "upstream-timeout",
  /** The upstream's connection broke mid-answer. */
  "upstream-dropped",
  /** The client went away before the answer ended. */
  "client-closed",
  /** The request was malformed or over the size limit. */
  "bad-request",
] as const;
export type CallOutcome = (typeof CALL_OUTCOMES)[number];

/** What a budget did to a call. */
export interface BudgetAct {
  kind: BudgetKind;
  action: "refused" | "clamped" | "stopped" | "tools-disabled";
}

/** The tools that differ from the session's first tool set. */
export interface ToolSetChange {
  added: string[];
  removed: string[];
  /** Same name, different description or schema. */
  changed: string[];
}

/**
 * One call through the gateway, as `gateway.audit(sessionId)` returns it and the audit file
 * stores it (one JSON object a line). Token counts are the upstream's own unless `usageSource`
 * says `delivered` (a stream cut short: the prompt as the upstream reported it, or the local
 * estimate when it had not; the output counted locally from what reached the client).
 */
export interface AuditRecord {
  sessionId: string;
  /** Unique per gateway: `call-<n>`. */
  callId: string;
  /** When the request arrived (ISO 8601). */
  at: string;
  api: GatewayApi;
  model: string | undefined;
  stream: boolean;
  /** The HTTP status the client got. */
  status: number;
  outcome: CallOutcome;
  durationMs: number;
  /** The booked usage; undefined when nothing was booked (refused, released). */
  usage: Usage | undefined;
  usageSource: "upstream" | "delivered" | undefined;
  /** Dollars at the price table; `null` when the model has no known price (see `price-unknown`). */
  costUsd: number | null | undefined;
  /** Which budgets acted on this call, and how. */
  budget: BudgetAct[];
  /** The output cap asked for and the one forwarded, when the gateway lowered it. */
  maxTokens?: { requested: number | undefined; forwarded: number };
  /** The prompt's upper-bound estimate reserved before forwarding. */
  inputEstimate: number;
  /** Tokens of tool results first seen in this request, charged to the tool-call budget. */
  toolResultTokens: number;
  /** Set when the request's tool set differs from the session's first one. */
  toolsChanged?: ToolSetChange;
  /** What went wrong, when something did. */
  error?: string;
}

/** A session's totals over its audit records. */
export interface SessionStats {
  sessionId: string;
  calls: number;
  usage: Usage;
  /** Known dollars; calls with an unknown price add nothing here and count in `unpricedCalls`. */
  costUsd: number;
  unpricedCalls: number;
  /** Cache reads over all prompt tokens (seed 004's first production metric); 0 before any call. */
  cacheHitRate: number;
}

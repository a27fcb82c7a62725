import { InvalidArgumentError } from "@bulkhead/core";
import { MemoryRefusedError } from "./memory-errors.js";
import type { MemoryApplies, MemoryEntry } from "./memory-entry.js";
import type { MemoryStore } from "./memory-store.js";

/** What a reviewer may change while accepting. */
export interface MemoryEdit {
  title?: string;
  body?: string;
  applies?: MemoryApplies;
  why?: string;
  /** An ISO time after which the entry is never selected; `null` removes the expiry. */
  expiresAt?: string | null;
}

export interface AcceptMemoryEntryOptions {
  /** The person who accepts: recorded as `accepted_by`. */
  by: string;
  /** Changes made while reviewing. */
  edit?: MemoryEdit;
  /** The clock, for tests. */
  now?: () => Date;
}

/** An identity bulkhead gives agents (`agent`, `agent@<session>`): it may propose, never accept. */
const AGENT_IDENTITY = /^agent(@|$)/i;

function person(by: unknown, parameter: string): string {
  if (typeof by !== "string" || by.trim() === "" || /[\r\n]/.test(by))
    throw new InvalidArgumentError(parameter, "say who reviews, on one line (--by <name>)");
  return by.trim();
}

function applyEdit(entry: MemoryEntry, edit: MemoryEdit): MemoryEntry {
  const next = { ...entry };
  if (edit.title !== undefined) next.title = edit.title;
  if (edit.body !== undefined) next.body = edit.body.trim();
  if (edit.applies !== undefined) next.applies = edit.applies;
  if (edit.why !== undefined) next.why = edit.why;
  if (edit.expiresAt === null) delete next.expiresAt;
  else if (edit.expiresAt !== undefined) next.expiresAt = edit.expiresAt;
  return next;
}

/**
 * Accepts a proposed entry, optionally edited, as a person: from then on it can be selected for
 * tasks. Refused ({@link MemoryRefusedError}) when the entry is not proposed, when `by` is an
 * agent identity, or when `by` is who proposed it (nothing enters memory unreviewed).
 *
 * @example
 * await acceptMemoryEntry(store, "m-3f9a2c41d0e7", { by: "alice", edit: { applies: "workspace" } });
 */
export async function acceptMemoryEntry(store: MemoryStore, id: string, options: AcceptMemoryEntryOptions): Promise<MemoryEntry> {
  const by = person(options?.by, "options.by");
  const { edit = {}, now = () => new Date() } = options;
  if (AGENT_IDENTITY.test(by))
    throw new MemoryRefusedError(id, `"${by}" is an agent: an agent may propose, only a person (or a policy) accepts`);
  return store.update(id, (current) => {
    if (current.status !== "proposed")
      throw new MemoryRefusedError(
        id,
        `is already ${current.status}${current.acceptedBy ? ` by ${current.acceptedBy}` : ""}: nothing to accept`,
      );
    if (current.source.by !== undefined && current.source.by === by && current.source.kind !== "person")
      throw new MemoryRefusedError(id, `was proposed by ${by}, who cannot also accept it: ask another person`);
    const at = now().toISOString();
    return { ...applyEdit(current, edit), status: "accepted", acceptedBy: by, acceptedAt: at, updatedAt: at };
  });
}

/**
 * Drops an entry: it is kept with status `dropped` (and who and why), so proposing the same
 * handover again stays dropped, and is never selected.
 *
 * @example
 * await dropMemoryEntry(store, "m-3f9a2c41d0e7", { by: "alice", reason: "one-off, not a rule" });
 */
export async function dropMemoryEntry(
  store: MemoryStore,
  id: string,
  options: { by: string; reason?: string; now?: () => Date },
): Promise<MemoryEntry> {
  const by = person(options?.by, "options.by");
  const { reason, now = () => new Date() } = options;
  return store.update(id, (current) => {
    if (current.status === "dropped") throw new MemoryRefusedError(id, `was already dropped by ${current.droppedBy ?? "someone"}`);
    const at = now().toISOString();
    return { ...current, status: "dropped", droppedBy: by, droppedAt: at, updatedAt: at, ...(reason ? { dropReason: reason } : {}) };
  });
}

/** A configured rule that accepts some proposals without a person, e.g. conventions proposed by a lead. */
export interface MemoryPolicy {
  /** Recorded as `accepted_by: policy:<name>`. */
  name: string;
  accepts(entry: MemoryEntry): boolean;
}

/**
 * Runs a policy over every proposed entry and accepts those it allows, as `policy:<name>`.
 * Returns the ids accepted.
 *
 * @example
 * await applyMemoryPolicy(store, { name: "conventions-by-lead", accepts: (entry) => entry.kind === "convention" && entry.source.by === "lead" });
 */
export async function applyMemoryPolicy(
  store: MemoryStore,
  policy: MemoryPolicy,
  { now = () => new Date() }: { now?: () => Date } = {},
): Promise<string[]> {
  if (typeof policy?.name !== "string" || !/^[A-Za-z0-9._-]{1,64}$/.test(policy.name) || typeof policy.accepts !== "function")
    throw new InvalidArgumentError("policy", "expected { name, accepts(entry) } with a name of letters, digits, '.', '_' or '-'");
  const accepted: string[] = [];
  for (const entry of (await store.list()).entries) {
    if (entry.status !== "proposed" || !policy.accepts(structuredClone(entry))) continue;
    const at = now().toISOString();
    await store.update(entry.id, (current) =>
      current.status === "proposed"
        ? { ...current, status: "accepted", acceptedBy: `policy:${policy.name}`, acceptedAt: at, updatedAt: at }
        : current,
    );
    accepted.push(entry.id);
  }
  return accepted;
}

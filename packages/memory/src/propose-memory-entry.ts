import { createHash } from "node:crypto";
import { InvalidArgumentError } from "@bulkhead/core";
import { InvalidMemoryEntryError } from "./memory-errors.js";
import type { MemoryApplies, MemoryEntry, MemoryKind } from "./memory-entry.js";
import { parseMemoryEntry, renderMemoryEntry } from "./parse-memory-entry.js";

/** What a person or an agent proposes by hand (`bulkhead memory propose --kind …`). */
export interface ProposeMemoryEntryInput {
  kind: MemoryKind;
  title: string;
  body?: string;
  applies: MemoryApplies;
  why?: string;
  learning?: "pattern" | "failure";
  foundIn?: { repo: string; path?: string };
  /** Where it came from: a person, a commit (its sha) or a handover (its id). */
  source: MemoryEntry["source"];
  expiresAt?: string;
  /** The clock, for tests. @default () => new Date() */
  now?: () => Date;
}

/**
 * Builds one PROPOSED entry, validated with every limit of an entry file. The id is derived from
 * the source and the title, so the same proposal twice has the same id.
 *
 * @example
 * await store.create(proposeMemoryEntry({ kind: "convention", title: "Errors carry a code", applies: "workspace",
 *   source: { kind: "person", ref: "alice" } }));
 */
export function proposeMemoryEntry(input: ProposeMemoryEntryInput): MemoryEntry {
  const { now = () => new Date(), ...fields } = input ?? ({} as ProposeMemoryEntryInput);
  if (typeof fields.title !== "string" || typeof fields.source?.ref !== "string")
    throw new InvalidArgumentError("input", "expected a kind, a title, applies and a source");
  const at = now().toISOString();
  const id = `m-${createHash("sha256").update(`${fields.source.kind}\u0000${fields.source.ref}\u0000${fields.kind}\u0000${fields.title}`).digest("hex").slice(0, 12)}`;
  const entry: MemoryEntry = {
    id,
    kind: fields.kind,
    status: "proposed",
    title: fields.title,
    body: (fields.body ?? "").trim(),
    applies: fields.applies,
    ...(fields.kind === "decision" && fields.why !== undefined ? { why: fields.why } : {}),
    ...(fields.kind === "decision" && fields.source.by !== undefined ? { decidedBy: fields.source.by } : {}),
    ...(fields.kind === "learning" && fields.learning !== undefined ? { learning: fields.learning } : {}),
    ...(fields.kind === "learning" && fields.foundIn !== undefined ? { foundIn: fields.foundIn } : {}),
    source: fields.source,
    createdAt: at,
    updatedAt: at,
    ...(fields.expiresAt === undefined ? {} : { expiresAt: fields.expiresAt }),
  };
  try {
    return parseMemoryEntry(renderMemoryEntry(entry), { source: "input" });
  } catch (error) {
    if (!InvalidMemoryEntryError.isInstance(error)) throw new InvalidArgumentError("input", (error as Error).message, { cause: error });
    throw new InvalidArgumentError("input", error.problems.map((problem) => `${problem.path || "entry"}: ${problem.message}`).join("; "), {
      cause: error,
    });
  }
}

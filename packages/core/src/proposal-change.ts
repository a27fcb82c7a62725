import type { ChangedPath } from "./change-set.js";
import type { ProposalChange } from "./proposal.js";

/** A change set's path as a proposal keeps it (a file's bytes as base64, so it survives JSON). */
export function toProposalChange(change: ChangedPath): ProposalChange {
  const { entry } = change;
  return {
    kind: change.kind,
    ...(entry === undefined
      ? {}
      : {
          entry:
            entry.type === "file"
              ? { type: "file" as const, mode: entry.mode, base64: Buffer.from(entry.bytes).toString("base64"), oid: entry.oid }
              : { type: "link" as const, mode: entry.mode, target: entry.target, oid: entry.oid },
        }),
    ...(change.base ? { base: { mode: change.base.mode, oid: change.base.oid } } : {}),
  };
}

/** The proposal's change back as a change set's path, ready for the lead (`submit({ changes })`). */
export function fromProposalChange(path: string, change: ProposalChange): ChangedPath {
  const { entry } = change;
  return {
    path,
    kind: change.kind,
    ...(entry === undefined
      ? {}
      : {
          entry:
            entry.type === "file"
              ? { type: "file" as const, mode: entry.mode, bytes: new Uint8Array(Buffer.from(entry.base64, "base64")), oid: entry.oid }
              : entry,
        }),
    ...(change.base ? { base: change.base } : {}),
  };
}

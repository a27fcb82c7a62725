import { createHash } from "node:crypto";
import { InvalidArgumentError, normalizeRepoPath, REPO_NAME_PATTERN } from "@bulkhead/core";
import { MAX_MEMORY_TITLE_CHARS, type MemoryApplies, type MemoryEntry } from "./memory-entry.js";

/**
 * The parts of a handover document that memory reads: structurally the `HandoverDocument` of
 * `@bulkhead/handover`, declared here so this package depends on core only.
 */
export interface HandoverForMemory {
  id: string;
  task: { id?: string; title: string };
  createdAt: string;
  notes: readonly string[];
  /** Decisions taken during the task, one line each ("what — why"). */
  decisions?: readonly string[];
  crossRepoImpact: { reposTouched: readonly string[] };
}

export interface ProposeFromHandoverOptions {
  /** Who proposes (the agent or session that wrote the handover). @default "agent" */
  by?: string;
  /** Where the entries apply unless a line says otherwise. @default the repos the handover touched, else the workspace */
  applies?: MemoryApplies;
}

const APPLIES_TAG = /^\[applies: ([^\]]{1,2000})\]\s*/;
const KIND_PREFIX = /^(convention|pattern|failure|learning):\s*/i;

/** Reads a leading `[applies: workspace]` or `[applies: api, web:src/routes]` tag; undefined when absent or malformed. */
export function parseAppliesTag(text: string): { applies: MemoryApplies; rest: string } | undefined {
  const tag = APPLIES_TAG.exec(text);
  if (!tag) return undefined;
  const applies = parseApplies(tag[1]!.split(","));
  return applies === undefined ? undefined : { applies, rest: text.slice(tag[0].length) };
}

/**
 * Parses targets written as `workspace`, `<repo>` or `<repo>:<path>` (the CLI's `--applies` and
 * the handover tag): undefined when any is malformed. `workspace` anywhere means the workspace.
 */
export function parseApplies(items: readonly string[]): MemoryApplies | undefined {
  const targets = new Map<string, string[]>();
  for (const raw of items) {
    const item = raw.trim();
    if (item === "workspace") return "workspace";
    const colon = item.indexOf(":");
    const repo = colon === -1 ? item : item.slice(0, colon);
    if (!REPO_NAME_PATTERN.test(repo)) return undefined;
    const paths = targets.get(repo) ?? [];
    targets.set(repo, paths);
    if (colon !== -1) {
      const path = normalizeRepoPath(item.slice(colon + 1));
      if (!path.ok) return undefined;
      if (path.path !== "." && !paths.includes(path.path)) paths.push(path.path);
    }
  }
  if (targets.size === 0) return undefined;
  return [...targets].map(([repo, paths]) => ({ repo, paths }));
}

/** A stable id from where the entry came from and what it says: proposing the same handover twice adds nothing. */
function entryId(handoverId: string, kind: string, text: string): string {
  return `m-${createHash("sha256").update(`${handoverId}\u0000${kind}\u0000${text}`).digest("hex").slice(0, 12)}`;
}

/** A one-line title within the limit; the full text goes to the body when it is longer. */
function titleAndBody(text: string): { title: string; body: string } {
  const line = text.replace(/[\r\n\u0085\u2028\u2029]+/g, " ").trim();
  if (line.length <= MAX_MEMORY_TITLE_CHARS) return { title: line, body: "" };
  return { title: `${line.slice(0, MAX_MEMORY_TITLE_CHARS - 1)}…`, body: line };
}

/**
 * Turns a handover's decisions and notes into PROPOSED memory entries: each decision a
 * `decision` ("what — why" or "what because why"), each note a `learning` (or a `convention`
 * when it starts with "Convention:"; "Pattern:" and "Failure:" mark the learning's kind). A line
 * may start with `[applies: workspace]` or `[applies: api, web:src/routes]`; otherwise the entry
 * applies to the repos the handover touched. Ids are derived from the handover and the text, so
 * this is deterministic and proposing twice is a no-op. Nothing is accepted here.
 *
 * @example
 * for (const entry of proposeFromHandover(await loadHandover("handover.md"), { by: "agent@s123" })) await store.create(entry);
 */
export function proposeFromHandover(document: HandoverForMemory, options: ProposeFromHandoverOptions = {}): MemoryEntry[] {
  if (typeof document?.id !== "string" || !Array.isArray(document.notes) || typeof document.createdAt !== "string")
    throw new InvalidArgumentError("document", "expected a handover document (from parseHandover, loadHandover or buildHandover)");
  const { by = "agent" } = options;
  if (typeof by !== "string" || by.trim() === "" || /[\r\n]/.test(by))
    throw new InvalidArgumentError("options.by", "say who proposes, on one line");
  const touched = document.crossRepoImpact?.reposTouched ?? [];
  const fallback: MemoryApplies = options.applies ?? (touched.length > 0 ? touched.map((repo) => ({ repo, paths: [] })) : "workspace");
  const source = { kind: "handover" as const, ref: document.id, by };
  const at = document.createdAt;
  const entries: MemoryEntry[] = [];

  for (const line of document.decisions ?? []) {
    const tagged = parseAppliesTag(line.trim());
    const text = tagged?.rest ?? line.trim();
    if (text === "") continue;
    const split = /^(.*?)(?: — | because )(.+)$/.exec(text);
    const { title, body } = titleAndBody(split ? split[1]! : text);
    const why = split ? titleAndBody(split[2]!).title : undefined;
    entries.push({
      id: entryId(document.id, "decision", line),
      kind: "decision",
      status: "proposed",
      title,
      body,
      applies: tagged?.applies ?? fallback,
      ...(why === undefined ? {} : { why }),
      decidedBy: by,
      source,
      createdAt: at,
      updatedAt: at,
    });
  }

  for (const line of document.notes) {
    const tagged = parseAppliesTag(line.trim());
    let text = tagged?.rest ?? line.trim();
    const prefix = KIND_PREFIX.exec(text);
    if (prefix) text = text.slice(prefix[0].length);
    if (text === "") continue;
    const label = prefix?.[1]!.toLowerCase();
    const kind = label === "convention" ? "convention" : "learning";
    const { title, body } = titleAndBody(text);
    entries.push({
      id: entryId(document.id, kind, line),
      kind,
      status: "proposed",
      title,
      body,
      applies: tagged?.applies ?? fallback,
      ...(kind === "learning" && (label === "pattern" || label === "failure") ? { learning: label } : {}),
      ...(kind === "learning" && touched.length === 1 ? { foundIn: { repo: touched[0]! } } : {}),
      source,
      createdAt: at,
      updatedAt: at,
    });
  }
  return entries;
}

import { normalizeRepoPath, REPO_NAME_PATTERN } from "@bulkhead/core";
import { z } from "zod";

/** Largest entry file accepted, in bytes: an entry is a paragraph, not a document. */
export const MAX_MEMORY_ENTRY_BYTES = 16 * 1024;
/** Longest title, in characters (one line). */
export const MAX_MEMORY_TITLE_CHARS = 200;
/** Longest body, in characters. */
export const MAX_MEMORY_BODY_CHARS = 8000;
/** Most repos one entry may bind, and most paths per repo. */
export const MAX_MEMORY_APPLIES = 32;

/** An entry id: lower-case letters, digits and `-`, 3 to 64 characters; also its file name (`<id>.md`). */
export const MEMORY_ID_PATTERN = /^[a-z0-9][a-z0-9-]{2,63}$/;

const oneLine = (what: string, max: number) =>
  z
    .string({ error: `expected ${what}` })
    .trim()
    .min(1, { error: `expected ${what}, got an empty text` })
    .max(max, { error: `is longer than ${max} characters: shorten ${what}` })
    .refine((value) => !/[\r\n\u0085\u2028\u2029]/.test(value), { error: `${what} must be one line` });

const repoName = () =>
  z
    .string({ error: "expected a repo name" })
    .regex(REPO_NAME_PATTERN, { error: "expected a repo name of letters, digits, '.', '_' or '-'" });

const repoPath = () =>
  z.string({ error: "expected a path relative to the repo root" }).transform((value, context) => {
    const normalized = normalizeRepoPath(value);
    if (!normalized.ok) {
      context.addIssue({ code: "custom", message: `path ${JSON.stringify(value)} ${normalized.reason}` });
      return z.NEVER;
    }
    return normalized.path;
  });

const time = (what: string) => z.iso.datetime({ error: `expected ${what} as an ISO time, e.g. 2026-12-01T10:00:00.000Z` });

let fileSchema: ReturnType<typeof buildFileSchema> | undefined;

function buildFileSchema() {
  const target = z.strictObject(
    {
      repo: repoName(),
      paths: z
        .array(repoPath(), { error: "expected a list of paths" })
        .max(MAX_MEMORY_APPLIES, { error: `lists more than ${MAX_MEMORY_APPLIES} paths: bind the directory instead` })
        .optional(),
    },
    { error: "expected a mapping with repo and paths" },
  );
  return z.strictObject(
    {
      id: z
        .string({ error: "expected an entry id" })
        .regex(MEMORY_ID_PATTERN, { error: "expected an id of lower-case letters, digits and '-'" }),
      kind: z.enum(["decision", "learning", "convention"], { error: 'expected "decision", "learning" or "convention"' }),
      status: z.enum(["proposed", "accepted", "dropped"], { error: 'expected "proposed", "accepted" or "dropped"' }),
      title: oneLine("a one-line title", MAX_MEMORY_TITLE_CHARS),
      applies: z.union([z.literal("workspace"), z.array(target).min(1).max(MAX_MEMORY_APPLIES)], {
        error: 'expected "workspace" or a list of { repo, paths }',
      }),
      why: oneLine("why it was decided", MAX_MEMORY_TITLE_CHARS * 4).optional(),
      decided_by: oneLine("who decided", 200).optional(),
      learning: z.enum(["pattern", "failure"], { error: 'expected "pattern" or "failure"' }).optional(),
      found_in: z
        .strictObject({ repo: repoName(), path: repoPath().optional() }, { error: "expected a mapping with repo and path" })
        .optional(),
      source: z.strictObject(
        {
          kind: z.enum(["handover", "commit", "person"], { error: 'expected "handover", "commit" or "person"' }),
          ref: oneLine("the handover id, commit or person", 200),
          by: oneLine("who proposed it", 200).optional(),
        },
        { error: "expected a mapping with kind, ref and by" },
      ),
      created: time("the creation time"),
      updated: time("the last update time"),
      expires: time("the expiry time").optional(),
      accepted_by: oneLine("who accepted it", 200).optional(),
      accepted_at: time("the acceptance time").optional(),
      dropped_by: oneLine("who dropped it", 200).optional(),
      dropped_at: time("the time it was dropped").optional(),
      drop_reason: oneLine("why it was dropped", MAX_MEMORY_TITLE_CHARS).optional(),
    },
    { error: "expected a mapping (the entry's front matter)" },
  );
}

/** The zod schema of an entry's front matter, in the file's snake_case keys. Built on first use. */
export function memoryEntryFileSchema(): ReturnType<typeof buildFileSchema> {
  fileSchema ??= buildFileSchema();
  return fileSchema;
}

/** The front matter of an entry file, as written (snake_case). */
export type MemoryEntryFile = z.input<ReturnType<typeof buildFileSchema>>;

/** Where an entry applies: the whole workspace (every repo), or named repos, optionally narrowed to paths. */
export type MemoryApplies = "workspace" | { repo: string; paths: string[] }[];

/** What an entry records. */
export type MemoryKind = "decision" | "learning" | "convention";

/** `proposed` until a person (or a configured policy) accepts it; `dropped` is kept so a re-proposal stays dropped. */
export type MemoryStatus = "proposed" | "accepted" | "dropped";

/**
 * One entry of project memory: a decision, a learning or a convention, with where it applies,
 * where it came from, and who accepted it. Stored as one Markdown file with YAML front matter.
 */
export interface MemoryEntry {
  /** Stable id; the file is `<id>.md`. */
  id: string;
  kind: MemoryKind;
  status: MemoryStatus;
  /** What was decided, learned or agreed, in one line. */
  title: string;
  /** More detail, Markdown. @default "" */
  body: string;
  /** Where it applies: `"workspace"`, or repos (a path list narrows it; empty means the whole repo). */
  applies: MemoryApplies;
  /** A decision: why it was decided. */
  why?: string;
  /** A decision: who decided it. */
  decidedBy?: string;
  /** A learning: a pattern to follow or a failure to avoid. */
  learning?: "pattern" | "failure";
  /** A learning: where it was found. */
  foundIn?: { repo: string; path?: string };
  /** Where the entry came from: a handover, a commit or a person. */
  source: { kind: "handover" | "commit" | "person"; ref: string; by?: string };
  createdAt: string;
  updatedAt: string;
  /** After this time the entry is never selected. */
  expiresAt?: string;
  acceptedBy?: string;
  acceptedAt?: string;
  droppedBy?: string;
  droppedAt?: string;
  dropReason?: string;
}

/** Maps validated front matter and a body to the API shape. */
export function memoryEntryFromFile(file: z.output<ReturnType<typeof buildFileSchema>>, body: string): MemoryEntry {
  const entry: MemoryEntry = {
    id: file.id,
    kind: file.kind,
    status: file.status,
    title: file.title,
    body,
    applies: file.applies === "workspace" ? "workspace" : file.applies.map((target) => ({ repo: target.repo, paths: target.paths ?? [] })),
    source: { kind: file.source.kind, ref: file.source.ref, ...(file.source.by === undefined ? {} : { by: file.source.by }) },
    createdAt: file.created,
    updatedAt: file.updated,
  };
  const optional: [keyof MemoryEntry, unknown][] = [
    ["why", file.why],
    ["decidedBy", file.decided_by],
    ["learning", file.learning],
    ["foundIn", file.found_in && { repo: file.found_in.repo, ...(file.found_in.path === undefined ? {} : { path: file.found_in.path }) }],
    ["expiresAt", file.expires],
    ["acceptedBy", file.accepted_by],
    ["acceptedAt", file.accepted_at],
    ["droppedBy", file.dropped_by],
    ["droppedAt", file.dropped_at],
    ["dropReason", file.drop_reason],
  ];
  for (const [key, value] of optional) if (value !== undefined) (entry as unknown as Record<string, unknown>)[key] = value;
  return entry;
}

/** Maps an entry to its front matter, keys in a fixed order so files diff cleanly. */
export function memoryEntryToFile(entry: MemoryEntry): MemoryEntryFile {
  const file: Record<string, unknown> = {
    id: entry.id,
    kind: entry.kind,
    status: entry.status,
    title: entry.title,
    applies:
      entry.applies === "workspace"
        ? "workspace"
        : entry.applies.map((target) => (target.paths.length === 0 ? { repo: target.repo } : { repo: target.repo, paths: target.paths })),
    why: entry.why,
    decided_by: entry.decidedBy,
    learning: entry.learning,
    found_in: entry.foundIn,
    source: entry.source,
    created: entry.createdAt,
    updated: entry.updatedAt,
    expires: entry.expiresAt,
    accepted_by: entry.acceptedBy,
    accepted_at: entry.acceptedAt,
    dropped_by: entry.droppedBy,
    dropped_at: entry.droppedAt,
    drop_reason: entry.dropReason,
  };
  for (const key of Object.keys(file)) if (file[key] === undefined) delete file[key];
  return file as MemoryEntryFile;
}

import { REPO_NAME_PATTERN, usageReportSchema } from "@bulkhead/core";
import { z } from "zod";

const repoName = z.string().regex(REPO_NAME_PATTERN, "expected a repo name of letters, digits, '.', '_' or '-'");

const line = (what: string) => z.string({ error: `expected ${what}` }).refine((value) => !/[\r\n]/.test(value), `${what} must be one line`);

/** A file a task changed, as git sees it. */
export const changedFileSchema = z.object({
  repo: repoName,
  path: z.string().min(1),
  change: z.enum(["added", "modified", "deleted"]),
  /** Committed since the base, or still only in the working tree. */
  state: z.enum(["committed", "uncommitted"]),
});

/** A validation gate's outcome, with a short summary of its evidence (not a transcript). */
export const gateOutcomeSchema = z.object({
  name: line("a gate name").pipe(z.string().min(1)),
  result: z.enum(["passed", "failed", "skipped"]),
  evidence: z.string(),
});

/** A change held by the guard for approval. */
export const heldProposalSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  repo: repoName,
  file: z.string().min(1),
  status: z.enum(["pending", "approved", "rejected"]),
});

/** The lists a size bound may shorten, in the order they are rendered. */
export const TRIMMABLE_SECTIONS = ["done", "filesChanged", "nextTaskDependencies", "gates", "notes"] as const;

/** A list shortened to fit the size bound, and how many entries it lost. */
export const trimmedListSchema = z.object({
  section: z.enum(TRIMMABLE_SECTIONS),
  omitted: z.number().int().positive(),
});

/**
 * The handover document of seed 000: what was done, what changed, what it cost, what it touched
 * across repos, and what the next task depends on. Built from real data by `buildHandover`,
 * rendered to Markdown by `renderHandover` and read back exactly by `parseHandover`.
 */
export const handoverSchema = z.object({
  /** `handover-<time>-<random>`. */
  id: z.string().regex(/^[A-Za-z0-9._:-]{1,100}$/),
  task: z.object({
    id: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/)
      .optional(),
    title: line("a task title").pipe(z.string().min(1)),
  }),
  status: z.enum(["complete", "partial", "blocked"]),
  /** The agent's narrative: the only part that does not come from data. */
  done: z.array(z.string()),
  /** Each repo's files together (the Markdown groups them by repo), as `buildHandover` lists them. */
  filesChanged: z
    .array(changedFileSchema)
    .refine(
      (files) =>
        files.every(
          (file, index) =>
            index === 0 || file.repo === files[index - 1]!.repo || !files.slice(0, index).some((earlier) => earlier.repo === file.repo),
        ),
      "list each repo's files together",
    ),
  /** Token consumption, from the tracker's report. */
  tokens: usageReportSchema.optional(),
  crossRepoImpact: z.object({ reposTouched: z.array(repoName), held: z.array(heldProposalSchema) }),
  nextTaskDependencies: z.array(z.string()),
  gates: z.array(gateOutcomeSchema),
  notes: z.array(z.string()),
  createdAt: z.iso.datetime(),
  previousHandoverId: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,100}$/)
    .optional(),
  /** Lists shortened to fit the size bound; the rendered document says "(+N more)". */
  trimmed: z
    .array(trimmedListSchema)
    .refine(
      (lists) =>
        lists.every(
          (list, index) => index === 0 || TRIMMABLE_SECTIONS.indexOf(list.section) > TRIMMABLE_SECTIONS.indexOf(lists[index - 1]!.section),
        ),
      `list each trimmed section once, in document order (${TRIMMABLE_SECTIONS.join(", ")})`,
    ),
  /** Decisions taken during the task, one line each ("what — why"): proposed to project memory. */
  decisions: z.array(line("a decision")).optional(),
  /** Ids of the project-memory entries the agent was given (`@bulkhead/memory`'s selection). */
  memoryGiven: z.array(z.string().regex(/^[a-z0-9][a-z0-9-]{2,63}$/, "expected a memory entry id")).optional(),
  /** Set once by `consumeHandover`; a second consumer is refused. */
  consumed: z.object({ by: line("who consumed it").pipe(z.string().min(1)), at: z.iso.datetime() }).optional(),
});

export type HandoverDocument = z.output<typeof handoverSchema>;
export type ChangedFile = z.output<typeof changedFileSchema>;
export type GateOutcome = z.output<typeof gateOutcomeSchema>;

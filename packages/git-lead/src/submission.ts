import type { ChangedPath, GitFileMode, Usage } from "@bulkhead/core";
import { z } from "zod";

/** A gate that runs a command (an argument list, no shell) in the directory under test. Journaled with the submission. */
export interface CommandGate {
  /** The gate's name, in results, events and the journal. */
  name: string;
  /** The program and its arguments; run in its own process group, killed with it on a stop. */
  command: readonly string[];
  /** How long the gate may run before it is killed and fails closed. @default 300_000 */
  timeoutMs?: number;
}

/**
 * A gate that runs a function of this process. A function cannot be journaled, so a submission
 * carrying one is processed only by the lead object that queued it: another lead leaves it queued
 * while its process lives and refuses it (fail closed) once that process is gone.
 */
export interface FunctionGate {
  /** The gate's name, in results, events and the journal. */
  name: string;
  /** The check; `ok: true` passes, anything else (a throw included) fails closed. */
  run: (context: {
    /** The directory holding the candidate commit's files. */
    dir: string;
    /** The submission's paths. */
    files: readonly string[];
    issueId: string;
    /**
     * Fires when the gate's time limit passes or the submitter aborts: stop the work. The lead
     * stops waiting for the function at that moment either way (a function cannot be killed).
     */
    abortSignal: AbortSignal;
  }) => Promise<{ ok: boolean; output?: string }> | { ok: boolean; output?: string };
  /** How long the lead waits for the function before the gate fails closed. @default 300_000 */
  timeoutMs?: number;
}

/** A validation gate: a command or a function. Both fail closed. */
export type Gate = CommandGate | FunctionGate;

export interface GateResult {
  /** The gate's name. */
  name: string;
  /** Whether it passed. */
  ok: boolean;
  /** The last 4 KB of output, or the error, kept as evidence. */
  output: string;
  /** How long it ran. */
  durationMs: number;
}

/**
 * Limits on one submission, checked before anything is queued: paths per submission, bytes per
 * changed file (or link target), and bytes of all changed files together.
 */
export const SUBMISSION_LIMITS = {
  maxPaths: 10_000,
  maxFileBytes: 100 * 1024 * 1024,
  maxTotalBytes: 1024 * 1024 * 1024,
  maxGates: 64,
} as const;

/** One worker's request to commit its changes for an issue: `files` read from disk, or `changes` as bytes. */
export interface Submission {
  /** The issue the commit is for: one commit per issue (a second needs `fixup`). */
  issueId: string;
  /** Who wrote the changes; recorded in the commit's trailers and the journal. */
  worker: string;
  /**
   * Paths relative to the repo, read from the lead's `dir` as they are on disk now (a missing file
   * is a deletion). Only for trusted local workers that write into `dir` itself; each path is
   * resolved component by component and one beyond a symbolic link is refused, as git does.
   * Give `files` or `changes`, not both.
   */
  files?: readonly string[];
  /**
   * The changed paths of one repo's change set (`RepoChangeSet.paths`, from `session.changes()`):
   * the lead writes these bytes as blobs (every oid recomputed; a mismatch is refused) and commits
   * the branch tip's tree with them applied, reading nothing from any working tree.
   */
  changes?: readonly ChangedPath[];
  /** The commit message (its subject line first). */
  message: string;
  /** Files, directories or globs the worker may write; files outside are refused. @default no limit beyond the guard */
  manifest?: readonly string[];
  /** Extra `Key: value` trailers for the commit message. @default none */
  trailers?: Record<string, string>;
  /** The worker's token usage, recorded as trailers. @default none */
  usage?: Pick<Usage, "inputTokens" | "outputTokens">;
  /** Commit again for an issue that already has its commit. @default false */
  fixup?: boolean;
  /** An idempotency key: submitting the same id twice yields one outcome. @default random */
  id?: string;
  /** Command gates for this submission, run after the lead's own gates; journaled with it. @default none */
  gates?: readonly CommandGate[];
  /**
   * Cancels the submission (not journaled): before it is queued nothing happens; while it waits or
   * its gates run, the running gate is killed (its process group too), the submission is refused
   * in the journal as aborted and `submit()` throws `AbortedError`. Once its commit's intent is
   * journaled the abort is too late: the commit lands and `submit()` resolves with it. See
   * docs/cancellation.md#git-lead. @default none
   */
  abortSignal?: AbortSignal;
}

/** How a submission ended. */
export type SubmitResult =
  | {
      status: "committed";
      id: string;
      issueId: string;
      sha: string;
      parent: string | undefined;
      files: string[];
      gates: GateResult[];
      /** Set when the commit landed but the index could not be refreshed (`index.lock` held too long, or an index format left alone). */
      indexNotRefreshed?: string;
      /**
       * Paths of a checkout of the branch that were left as they were because they had local
       * changes there (in the working tree or the index): `git status` shows them as changed.
       */
      checkoutNotUpdated?: { workdir: string; path: string; reason: string }[];
    }
  | { status: "held"; id: string; issueId: string; reason: string; proposals: { file: string; proposalId: string }[] }
  | {
      status: "rejected";
      id: string;
      issueId: string;
      reason: string;
      gates: GateResult[];
      /** Set when the refusal is its submitter's abort (or a withdrawal after one), not a verdict on the change. */
      aborted?: true;
    };

/** A gate as journaled with its submission: a command, or a reference to a function of the process that queued it. */
export type JournaledGate = { name: string; command: string[]; timeoutMs?: number } | { name: string; function: true; timeoutMs?: number };

/** A changed path as queued: its blob is already in the object store, so only ids travel. */
export type QueuedChange = { path: string; deleted: true } | { path: string; deleted: false; mode: GitFileMode; oid: string };

/** A submission as it is journaled in the queue: everything the lead that processes it needs. */
export interface QueueEntry {
  id: string;
  queuedAt: string;
  issueId: string;
  worker: string;
  message: string;
  files?: string[];
  changes?: QueuedChange[];
  manifest?: string[];
  trailers?: Record<string, string>;
  usage?: { inputTokens: number; outputTokens: number };
  fixup?: boolean;
  /** Exactly the gates the processing lead runs. Absent (an older queue entry) is refused. */
  gates?: JournaledGate[];
  /** Who queued it: a function gate runs only in that lead object, while that process lives. */
  owner: { pid: number; lead: string };
}

/** The schemas of a submission and of a lead's gates, built on first use (not at import) and kept. */
function buildSchemas() {
  const oid = z.string().regex(/^[0-9a-f]{40}$/, "expected a 40-hex git object id");
  const commandGateSchema = z.object({
    name: z.string().min(1).max(200),
    command: z.array(z.string()).min(1, "a command gate needs a program").max(1000),
    timeoutMs: z.number().int().positive().optional(),
  });
  const changedPathSchema = z
    .object({
      path: z.string().min(1).max(4096),
      kind: z.enum(["added", "modified", "deleted"]),
      entry: z
        .discriminatedUnion("type", [
          z.object({
            type: z.literal("file"),
            mode: z.enum(["100644", "100755"]),
            bytes: z.instanceof(Uint8Array, { message: "expected the file's bytes as a Uint8Array" }),
            oid,
          }),
          z.object({ type: z.literal("link"), mode: z.literal("120000"), target: z.string().min(1).max(4096), oid }),
        ])
        .optional(),
      base: z.object({ mode: z.enum(["100644", "100755", "120000"]), oid }).optional(),
    })
    .refine((change) => (change.kind === "deleted") === (change.entry === undefined), {
      message: "a deleted path has no entry; an added or modified one has one",
    });

  const submissionSchema = z
    .object({
      issueId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,127}$/, "expected an issue id"),
      worker: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/, "expected a worker name"),
      files: z.array(z.string().min(1)).min(1, "list at least one file").max(SUBMISSION_LIMITS.maxPaths).optional(),
      changes: z.array(changedPathSchema).min(1, "list at least one changed path").max(SUBMISSION_LIMITS.maxPaths).optional(),
      message: z.string().trim().min(1, "write a commit message"),
      manifest: z.array(z.string().min(1)).optional(),
      trailers: z
        .record(
          z.string().regex(/^[A-Za-z][A-Za-z0-9-]*$/, "trailer names are words joined by '-'"),
          z.string().regex(/^[^\n]*$/, "one line"),
        )
        .optional(),
      usage: z.object({ inputTokens: z.number().int().nonnegative(), outputTokens: z.number().int().nonnegative() }).optional(),
      fixup: z.boolean().optional(),
      id: z
        .string()
        .regex(/^[A-Za-z0-9_-]{1,100}$/, "expected an id of letters, digits, '_' or '-'")
        .optional(),
      gates: z.array(commandGateSchema).max(SUBMISSION_LIMITS.maxGates).optional(),
      abortSignal: z.instanceof(AbortSignal, { message: "expected an AbortSignal" }).optional(),
    })
    .superRefine((submission, context) => {
      if ((submission.files === undefined) === (submission.changes === undefined))
        context.addIssue({
          code: "custom",
          path: ["files"],
          message: "give files (read from disk) or changes (a change set's paths), not both",
        });
      let total = 0;
      for (const [index, change] of (submission.changes ?? []).entries()) {
        const size = change.entry?.type === "file" ? change.entry.bytes.byteLength : Buffer.byteLength(change.entry?.target ?? "");
        total += size;
        if (size > SUBMISSION_LIMITS.maxFileBytes)
          context.addIssue({
            code: "custom",
            path: ["changes", index],
            message: `${change.path} has ${size} bytes, over the ${SUBMISSION_LIMITS.maxFileBytes} a submission takes per file`,
          });
      }
      if (total > SUBMISSION_LIMITS.maxTotalBytes)
        context.addIssue({
          code: "custom",
          path: ["changes"],
          message: `the changes hold ${total} bytes, over the ${SUBMISSION_LIMITS.maxTotalBytes} a submission takes: split it`,
        });
    });

  const gateSchema = z.union([
    commandGateSchema,
    z.object({
      name: z.string().min(1).max(200),
      run: z.custom<FunctionGate["run"]>((value) => typeof value === "function", "expected a function"),
      timeoutMs: z.number().int().positive().optional(),
    }),
  ]);
  return { submissionSchema, gateSchema };
}

let schemas: ReturnType<typeof buildSchemas> | undefined;

/** The schema `submit()` checks a submission with. */
export const submissionSchema = (): ReturnType<typeof buildSchemas>["submissionSchema"] => (schemas ??= buildSchemas()).submissionSchema;

/** The schema of one of a lead's gates (a command or a function). */
export const gateSchema = (): ReturnType<typeof buildSchemas>["gateSchema"] => (schemas ??= buildSchemas()).gateSchema;

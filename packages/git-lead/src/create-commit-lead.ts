import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import {
  AbortedError,
  createDeadline,
  InvalidArgumentError,
  isProcessAlive,
  lazySchema,
  sleep,
  TypedEmitter,
  validateOptions,
  type ChangedPath,
  type Deadline,
  type MultiRepoGuard,
} from "@bulkhead/core";
import git from "isomorphic-git";
import { z } from "zod";
import {
  buildTree,
  checkoutTree,
  queuedTreeChanges,
  readWorkerFiles,
  writeChangeBlobs,
  writeCommit,
  type TreeChanges,
} from "./build-commit.js";
import { checkPaths, proposeToGuard } from "./check-submission.js";
import { GitConflictError, LeadFencedError } from "./git-lead-errors.js";
import { compareAndSwapBranch, readBranch } from "./git-refs.js";
import { Journal, type JournalEntry } from "./journal.js";
import { isLeadLockLive, tryAcquireLeadLock, type LeadLock } from "./lead-lock.js";
import { ObjectStore } from "./object-store.js";
import { openIntents, recoverIntents } from "./recover-intents.js";
import { RemoteLanding, remoteLandingSchema, type RemoteLandingOptions } from "./remote-landing.js";
import { runGates } from "./run-gates.js";
import {
  gateSchema,
  submissionSchema,
  type FunctionGate,
  type Gate,
  type GateResult,
  type JournaledGate,
  type QueueEntry,
  type Submission,
  type SubmitResult,
} from "./submission.js";
import { SubmissionQueue } from "./submission-queue.js";
import { syncCheckouts } from "./sync-checkouts.js";

/** What {@link CommitLead.recover} did with the work a stopped lead left: submission ids. */
export interface RecoveryReport {
  /** Commits that had landed: journaled, their checkouts brought along, their results written. */
  finished: string[];
  /** Intents whose commit never landed: marked aborted; their submissions, still queued, run again. */
  rolledBack: string[];
}

/** Options of {@link CommitLead.recover}. */
export interface RecoverOptions {
  /** How long to wait for a live lead to finish before giving up with `GitConflictError`. @default 30_000 */
  timeoutMs?: number;
  /** Stops waiting: `recover()` throws `AbortedError`. Recovery itself, once it has the lock, runs to its end. @default none */
  abortSignal?: AbortSignal;
}

/** What {@link CommitLead.status} reports; reading it changes nothing on disk. */
export interface CommitLeadStatus {
  /** Queued submission ids, oldest first. */
  queue: string[];
  /** The submission whose commit is under way (an intent without an outcome), if any. */
  inFlight: string | undefined;
  /** Whether a live lead (in any process) holds the repository's lead lock now. */
  leadAlive: boolean;
  /**
   * Submission ids a stopped lead left unfinished (an intent without an outcome, or a commit
   * journaled without its result), while no live lead holds the lock: `recover()` (or the next
   * `submit()`) finishes or rolls them back. Empty while a live lead works.
   */
  recoveryPending: string[];
  /** The last 20 commits the journal records. */
  recentCommits: { id: string; issueId: string; sha: string }[];
  /** Submissions held for the guard's approval. */
  held: SubmitResult[];
}

/** The events of a {@link CommitLead}, one readonly object each. */
export interface CommitLeadEvents {
  "submission-queued": { id: string; issueId: string; worker: string };
  /** This lead took over and finished or rolled back what a stopped lead left (only when there was something). */
  "lead-recovered": RecoveryReport;
  "gate-end": { id: string; issueId: string; gate: GateResult };
  "commit-created": { id: string; issueId: string; sha: string; files: string[] };
  "submission-held": { id: string; issueId: string; reason: string };
  "submission-rejected": { id: string; issueId: string; reason: string };
}

export interface CommitLeadOptions {
  /**
   * The repository the lead commits into: the user's source repository (trusted) or a clone the
   * lead owns; a non-bare repository (with `.git/`) or a bare one. Never the agent's clone: the
   * lead reads its git directory and, for `files` submissions, its working tree.
   */
  dir: string;
  /** The branch the lead commits to. @default the branch `HEAD` points at in `dir` */
  branch?: string;
  /**
   * The commit a missing branch starts from: the lead's first commit gets it as its parent and
   * creates the branch in the same compare-and-swap, so a lead stopped before that leaves no
   * branch behind (never a branch that exists without its commit). A branch that exists is
   * committed on as it is. @default a missing branch gets a root commit
   */
  startAt?: string;
  /** The commits' author and committer. */
  author: { name: string; email: string };
  /**
   * Gates every submission made through this lead object must pass; copied into each submission's
   * journaled gate list at `submit()`, so whichever lead processes it runs exactly them.
   * @default none
   */
  gates?: readonly Gate[];
  /** Cross-repo or out-of-scope writes are held here instead of committed. @default none: nothing is held */
  guard?: Pick<MultiRepoGuard, "propose">;
  /** The repo's name for the guard. @default the directory's name */
  repo?: string;
  /** The lead's lease and git's index lock. @default `{ leaseMs: 30_000, indexTimeoutMs: 10_000 }` */
  lock?: {
    /** How long a lead's lease lasts without renewal (renewed every third of it). @default 30_000 */
    leaseMs?: number;
    /** How long to wait for git's `index.lock` after a commit. @default 10_000 */
    indexTimeoutMs?: number;
  };
  /**
   * Land every commit on the team's shared remote (see docs/git-lead.md#landing-on-a-shared-remote):
   * the commit is built on the remote's tip and pushed with a lease on it; `dir` is the lead's own
   * clone, whose branch follows the remote. @default none: commits land in `dir`
   */
  remote?: RemoteLandingOptions;
}

const buildOptionsSchema = () =>
  z.object({
    dir: z.string().min(1),
    branch: z
      .string()
      .regex(/^(?!.*\.\.)(?!\/)(?!.*\.lock$)[A-Za-z0-9._/-]+$/, "expected a branch name")
      .optional(),
    startAt: z
      .string()
      .regex(/^[0-9a-f]{40}$/, "expected a full commit id (40 hex digits)")
      .optional(),
    author: z.object({
      name: z
        .string()
        .min(1)
        .regex(/^[^<>\n]+$/, "no <, > or newline"),
      email: z
        .string()
        .min(1)
        .regex(/^[^<>\n]+$/, "no <, > or newline"),
    }),
    gates: z.array(gateSchema()).max(64).optional(),
    guard: z
      .custom<Pick<MultiRepoGuard, "propose">>(
        (value) => typeof (value as MultiRepoGuard | undefined)?.propose === "function",
        "expected a MultiRepoGuard",
      )
      .optional(),
    repo: z.string().min(1).optional(),
    lock: z.object({ leaseMs: z.number().int().positive().optional(), indexTimeoutMs: z.number().int().positive().optional() }).optional(),
    remote: remoteLandingSchema().optional(),
  });

const buildRecoverSchema = () =>
  z.object({
    timeoutMs: z.number().int().nonnegative().optional(),
    abortSignal: z.instanceof(AbortSignal, { message: "expected an AbortSignal" }).optional(),
  });

// Built on first use, not at import.
const optionsSchema = lazySchema(buildOptionsSchema);
const recoverSchema = lazySchema(buildRecoverSchema);

/** Resolves when `work` settles or `signal` fires, whichever is first; never rejects. */
function untilSettledOrAborted(work: Promise<unknown>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      signal.removeEventListener("abort", done);
      resolve();
    };
    signal.addEventListener("abort", done, { once: true });
    work.then(done, done);
  });
}

/** The git directory of a repository root: `<dir>/.git`, or `dir` itself when it is bare. */
function gitdirOf(dir: string): { gitdir: string; bare: boolean } {
  const dotGit = join(dir, ".git");
  const info = lstatSync(dotGit, { throwIfNoEntry: false });
  if (info?.isDirectory() && existsSync(join(dotGit, "HEAD"))) return { gitdir: dotGit, bare: false };
  if (info)
    throw new InvalidArgumentError(
      "options.dir",
      `${dir}/.git is not a directory (a linked worktree or submodule): pass the main repository`,
    );
  if (existsSync(join(dir, "HEAD")) && existsSync(join(dir, "objects")) && existsSync(join(dir, "refs")))
    return { gitdir: dir, bare: true };
  throw new InvalidArgumentError("options.dir", `${dir} is not the root of a git repository (no .git/HEAD, and not a bare repository)`);
}

/**
 * Workers write, the lead commits (seed 001). A lead takes submissions from any number of
 * workers, in this process and others, through a durable queue in the repository's git
 * directory, one at a time and in order. Each is checked against the worker's manifest and the
 * guard, run through its own journaled gates, and committed as exactly one commit for its issue,
 * straight from objects: blobs for the changes (a change set's bytes, with every oid recomputed,
 * or a trusted worker's files), trees rebuilt only along the changed paths, a commit, and a
 * compare-and-swap of the branch under git's ref lock. No git process, hook, filter or
 * configuration runs. Checkouts of the branch are brought along path by path where they are
 * clean. A journal (intent, then outcome) and a fenced cross-process lock make it safe to kill at
 * any moment: `recover()` finishes or rolls back the entry in flight. Creating a lead changes
 * nothing; `recover()` and `submit()` do. Close it (`await using`, or `close()`) when done.
 *
 * @example
 * await using lead = await createCommitLead({ dir: "backend-api", author: { name: "Lead", email: "lead@example.com" } });
 * await lead.recover();
 * const [repo] = (await session.changes()).repos;
 * const result = await lead.submit({ issueId: "RATE-1", worker: "agent-1", changes: repo.paths, message: "Add rate limiting" });
 */
export class CommitLead extends TypedEmitter<CommitLeadEvents> {
  /** The repository's root (its working tree, or the bare repository). */
  readonly dir: string;
  readonly branch: string;
  readonly #gitdir: string;
  readonly #bare: boolean;
  readonly #journal: Journal;
  readonly #queue: SubmissionQueue;
  readonly #options: CommitLeadOptions;
  readonly #repo: string;
  /** This lead object's id: its function gates run only in it. */
  readonly #instance = randomBytes(8).toString("hex");
  readonly #functions: Map<string, FunctionGate>;
  #driving: Promise<void> = Promise.resolve();
  /** The journal's committed entries, read when this process becomes the lead and kept current while it leads. */
  #committed: Extract<JournalEntry, { type: "committed" }>[] = [];
  /** One object store per lead, so its pack cache lives across commits. */
  readonly #objects: ObjectStore;
  /** Where commits land when the lead works for a shared remote. */
  readonly #remote: RemoteLanding | undefined;
  /** The signals of the submissions this object is waiting for, by id: the drive loop kills their gates on abort. */
  readonly #signals = new Map<string, AbortSignal>();
  /** The entry this process's drive loop is working on, and when it is done with it. */
  #processing: { id: string; done: Promise<void> } | undefined;
  #closed = false;

  /** @internal Use {@link createCommitLead}. */
  constructor(options: CommitLeadOptions & { branch: string }) {
    super();
    this.#options = options;
    this.dir = options.dir;
    this.branch = options.branch;
    const { gitdir, bare } = gitdirOf(options.dir);
    this.#gitdir = gitdir;
    this.#bare = bare;
    const state = join(gitdir, "bulkhead");
    this.#journal = new Journal(join(state, "journal.jsonl"));
    this.#queue = new SubmissionQueue(state);
    this.#repo = options.repo ?? basename(options.dir);
    this.#objects = new ObjectStore(gitdir, bare ? gitdir : options.dir);
    this.#remote = options.remote && new RemoteLanding({ ...options.remote, gitdir, branch: options.branch });
    this.#functions = new Map((options.gates ?? []).flatMap((gate) => ("run" in gate ? [[gate.name, gate] as const] : [])));
  }

  get #state(): string {
    return join(this.#gitdir, "bulkhead");
  }

  /**
   * Queues a submission durably and resolves with its outcome, whichever process commits it. A
   * change set's bytes are written as blobs first (every oid recomputed), so the queued entry
   * holds ids only. The gate list (this lead's gates, then the submission's own) is journaled
   * with it.
   *
   * When a stopped lead left work behind, the process that takes the lead finishes or rolls it
   * back first (the same as `recover()`, reported by the `lead-recovered` event): the queue
   * cannot move past an intent without an outcome, and whichever process leads next must settle
   * it, so `submit()` never refuses for "recovery pending".
   *
   * `abortSignal`: see {@link Submission.abortSignal}; an abort ends with `AbortedError` and
   * leaves nothing half done (no moved ref, no touched index, the journal records the refusal).
   */
  async submit(submission: Submission): Promise<SubmitResult> {
    const { abortSignal, ...parsed } = validateOptions(submissionSchema(), submission, "submission");
    if (this.#closed) throw new InvalidArgumentError("submit", `the lead over ${this.dir} is closed: create a new one`);
    const deadline = createDeadline({ abortSignal });
    try {
      deadline.throwIfAborted("submit");
      return await this.#submit(parsed, deadline);
    } finally {
      deadline.dispose();
    }
  }

  async #submit(parsed: Omit<Submission, "abortSignal">, deadline: Deadline): Promise<SubmitResult> {
    const id = parsed.id ?? `s${Date.now().toString(36)}${randomBytes(6).toString("hex")}`;
    const existing = this.#queue.result(id);
    if (existing) return this.#resynced(existing);
    const gates: JournaledGate[] = [
      ...(this.#options.gates ?? []).map((gate): JournaledGate =>
        "run" in gate
          ? { name: gate.name, function: true, ...(gate.timeoutMs === undefined ? {} : { timeoutMs: gate.timeoutMs }) }
          : { name: gate.name, command: [...gate.command], ...(gate.timeoutMs === undefined ? {} : { timeoutMs: gate.timeoutMs }) },
      ),
      ...(parsed.gates ?? []).map((gate) => ({
        name: gate.name,
        command: [...gate.command],
        ...(gate.timeoutMs === undefined ? {} : { timeoutMs: gate.timeoutMs }),
      })),
    ];
    const entry: QueueEntry = {
      id,
      queuedAt: `${Date.now().toString().padStart(15, "0")}.${process.hrtime.bigint().toString().padStart(20, "0")}`,
      issueId: parsed.issueId,
      worker: parsed.worker,
      message: parsed.message,
      ...(parsed.files ? { files: [...parsed.files] } : {}),
      ...(parsed.changes ? { changes: writeChangeBlobs(this.#objects, parsed.changes as readonly ChangedPath[]) } : {}),
      ...(parsed.manifest ? { manifest: [...parsed.manifest] } : {}),
      ...(parsed.trailers ? { trailers: parsed.trailers } : {}),
      ...(parsed.usage ? { usage: parsed.usage } : {}),
      ...(parsed.fixup === undefined ? {} : { fixup: parsed.fixup }),
      gates,
      owner: { pid: process.pid, lead: this.#instance },
    };
    deadline.throwIfAborted("submit");
    this.#queue.add(entry);
    this.emit("submission-queued", { id, issueId: entry.issueId, worker: entry.worker });
    this.#signals.set(id, deadline.signal);
    try {
      for (let first = true; ; first = false) {
        const result = this.#queue.result(id);
        // Found before this call drove anything: another lead committed it (a resubmission after a crash).
        if (result) return this.#answer(first ? await this.#resynced(result) : result, deadline);
        if (deadline.signal.aborted || this.#closed) return await this.#abandon(id, deadline);
        const driving = this.#drive();
        await untilSettledOrAborted(driving, deadline.signal);
        if (!this.#queue.result(id) && !deadline.signal.aborted)
          await sleep(5 + Math.random() * 20, deadline.signal).catch(() => undefined);
      }
    } finally {
      this.#signals.delete(id);
    }
  }

  /** An outcome for a caller: a refusal that its own abort caused ends as `AbortedError`. */
  #answer(result: SubmitResult, deadline: Deadline): SubmitResult {
    if (result.status === "rejected" && result.aborted && deadline.signal.aborted)
      throw new AbortedError(`submit of ${result.id} (${result.issueId})`, deadline.signal.reason);
    return result;
  }

  /**
   * The caller aborted while its submission waited or ran. When this process is working on it,
   * the drive loop has killed its gate: wait for that to end and answer with what it decided.
   * Otherwise it is withdrawn, so the lead that reaches it refuses it, and the call ends now.
   */
  async #abandon(id: string, deadline: Deadline): Promise<SubmitResult> {
    const processing = this.#processing;
    if (processing?.id === id) await processing.done;
    else this.#queue.withdraw(id);
    const result = this.#queue.result(id);
    // Decided before the abort took hold (a commit whose intent was journaled, a hold, a failed gate): that is the outcome.
    if (result) return this.#answer(result, deadline);
    throw new AbortedError(
      `submit of ${id}`,
      deadline.signal.aborted ? deadline.signal.reason : new Error(`the lead over ${this.dir} was closed while the submission waited`),
    );
  }

  /**
   * Finishes or rolls back the entry in flight after a crash: its commit counts when the branch
   * points at it, otherwise it is rolled back and its submission, still queued, runs again with
   * its own gates. Creating a lead never does this: call it before work to settle what a crash
   * left (the process that takes the lead in `submit()` does the same first). Waits for a live
   * lead to finish; `timeoutMs` bounds that wait (then `GitConflictError`), `abortSignal` ends it
   * (`AbortedError`).
   */
  async recover(options: RecoverOptions = {}): Promise<RecoveryReport> {
    const { timeoutMs = 30_000, abortSignal } = validateOptions(recoverSchema(), options, "options");
    const deadline = createDeadline({ abortSignal, timeoutMs });
    try {
      for (;;) {
        if (deadline.timedOut)
          throw new GitConflictError(`another lead has held ${this.#state} for ${timeoutMs} ms: recover when it is done`);
        deadline.throwIfAborted("recover");
        const lock = await tryAcquireLeadLock(this.#state, { leaseMs: this.#options.lock?.leaseMs ?? 30_000 });
        if (lock) {
          try {
            return await this.#recover();
          } finally {
            await lock.release();
          }
        }
        await sleep(20, deadline.signal).catch(() => undefined);
      }
    } finally {
      deadline.dispose();
    }
  }

  async #recover(): Promise<RecoveryReport> {
    const entries = await this.#journal.read();
    this.#committed = entries.filter((entry): entry is Extract<JournalEntry, { type: "committed" }> => entry.type === "committed");
    this.#remote?.remember(entries);
    const outcome = await recoverIntents({
      entries,
      journal: this.#journal,
      gitdir: this.#gitdir,
      branch: this.branch,
      ...(this.#remote && { landed: (intent) => this.#remote!.recover(intent, entries, { committer: this.#committer }) }),
      finish: async (intent) => {
        await this.#recordCommitted(intent.id, intent.issueId, intent.commit);
        const synced = await this.#syncCheckouts(intent.parent, intent.commit, intent.paths);
        this.#queue.writeResult({
          status: "committed",
          id: intent.id,
          issueId: intent.issueId,
          sha: intent.commit,
          parent: intent.parent,
          files: intent.paths,
          gates: intent.gates.map((gate) => ({ ...gate, durationMs: 0 })),
          ...synced,
        });
      },
    });
    // Committed and journaled, but stopped before the outcome: finish those now, not when the queue reaches them.
    for (const entry of this.#queue.list()) {
      const committed = this.#queue.result(entry.id) ? undefined : this.#committed.find((item) => item.id === entry.id);
      if (committed) {
        await this.#finishJournaled(entry, committed.sha);
        outcome.finished.push(entry.id);
      }
    }
    return outcome;
  }

  /**
   * Finishes a submission whose commit is journaled but whose outcome is not written: the lead
   * that made it stopped between the two, maybe before its checkouts were brought along. Syncing
   * is idempotent, so it runs again from the commit's own parent.
   */
  async #finishJournaled(entry: QueueEntry, sha: string): Promise<void> {
    const files = entry.files ?? entry.changes?.map((change) => change.path) ?? [];
    const parent = await this.#objects.commitParent(sha);
    const synced = await this.#syncCheckouts(parent, sha, files);
    return this.#finish(entry, { status: "committed", id: entry.id, issueId: entry.issueId, sha, parent, files, gates: [], ...synced });
  }

  /**
   * Queue, entry in flight, recovery pending, recent commits and held submissions. Read only: it
   * takes no lock and writes nothing, so looking at a crashed lead's repository changes nothing.
   */
  async status(): Promise<CommitLeadStatus> {
    const queued = this.#queue.list({ readOnly: true });
    const queue = queued.map((entry) => entry.id);
    const entries = await this.#journal.read();
    const open = openIntents(entries);
    const inFlight = open[0]?.id;
    const committed = entries.filter((entry): entry is Extract<JournalEntry, { type: "committed" }> => entry.type === "committed");
    const leadAlive = isLeadLockLive(this.#state);
    const journaled = new Set(committed.map((entry) => entry.id));
    const recoveryPending = leadAlive
      ? []
      : [
          ...new Set([
            ...open.map((intent) => intent.id),
            ...queued.filter((entry) => journaled.has(entry.id) && !this.#queue.result(entry.id)).map((entry) => entry.id),
          ]),
        ];
    const recentCommits = committed.slice(-20).map(({ id, issueId, sha }) => ({ id, issueId, sha }));
    const committedIssues = new Set(entries.flatMap((entry) => (entry.type === "committed" ? [entry.issueId] : [])));
    const held: SubmitResult[] = [];
    for (const id of await this.#queue.resultIds()) {
      const result = this.#queue.result(id);
      // Held until approved: once the issue is committed (resubmitted after approval), it is not held any more.
      if (result?.status === "held" && !committedIssues.has(result.issueId)) held.push(result);
    }
    return { queue, inFlight, leadAlive, recoveryPending, recentCommits, held };
  }

  /**
   * Waits for the submission this process is committing (no further one is taken), then closes
   * the journal. Idempotent; `await using lead = await createCommitLead(...)` calls it. A closed
   * lead refuses `submit()`; a `submit()` still waiting for its outcome is withdrawn and throws
   * `AbortedError`.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#driving;
    await this.#journal.close();
  }

  /** {@link close}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Whether this lead may process an entry now: `"take"`; `"wait"` when it carries a function
   * gate of another lead object whose process is alive (that lead will process it); or the
   * reason it can never be processed (fail closed).
   */
  #claim(entry: QueueEntry): "take" | "wait" | { refuse: string } {
    if (!Array.isArray(entry.gates)) return { refuse: "it was queued without its gate list (by an older lead): submit it again" };
    const functions = entry.gates.filter((gate) => !("command" in gate));
    if (functions.length === 0 || entry.owner?.lead === this.#instance) return "take";
    if (entry.owner && isProcessAlive(entry.owner.pid)) return "wait";
    return {
      refuse: `its function gate ${functions.map((gate) => gate.name).join(", ")} belonged to process ${entry.owner?.pid}, which is gone: a function cannot run in another process; submit it again`,
    };
  }

  /** Becomes the lead if nobody is, and works through the queue. Calls in this process take turns. */
  #drive(): Promise<void> {
    const turn = this.#driving.then(async () => {
      const leaseMs = this.#options.lock?.leaseMs ?? 30_000;
      if (this.#closed) return;
      const lock = await tryAcquireLeadLock(this.#state, { leaseMs });
      if (!lock) return;
      // The lease is kept alive while this process leads, also through a gate that runs for
      // minutes. If another lead took over, renewing fails and the next write is fenced.
      const keepAlive = setInterval(() => void lock.renew().catch(() => undefined), Math.max(20, leaseMs / 3));
      keepAlive.unref();
      try {
        const recovered = await this.#recover();
        if (recovered.finished.length + recovered.rolledBack.length > 0) this.emit("lead-recovered", recovered);
        for (;;) {
          let next: QueueEntry | undefined;
          let refusal: string | undefined;
          // Closing stops taking work after the entry in hand; the queue waits for the next lead.
          if (this.#closed) break;
          for (const candidate of this.#queue.list()) {
            const claim = this.#claim(candidate);
            if (claim === "wait") continue;
            next = candidate;
            if (claim !== "take") refusal = claim.refuse;
            break;
          }
          if (!next) break;
          await lock.renewIfDue();
          const entry = next;
          const processing = (async (): Promise<"fenced" | undefined> => {
            try {
              if (refusal) await this.#reject(entry, `the lead refused it: ${refusal}`);
              else if (this.#remote) await this.#remote.serialized(() => this.#process(entry, lock));
              else await this.#process(entry, lock);
            } catch (error) {
              // Taken over: the new lead owns the queue now. Anything else fails this one submission, not the queue.
              if (error instanceof LeadFencedError) return "fenced";
              await this.#reject(entry, `the lead could not commit it: ${(error as Error).message}`);
            }
            return undefined;
          })();
          this.#processing = {
            id: entry.id,
            done: processing.then(
              () => undefined,
              () => undefined,
            ),
          };
          const outcome = await processing.finally(() => (this.#processing = undefined));
          if (outcome === "fenced") return;
        }
      } finally {
        clearInterval(keepAlive);
        await lock.release();
      }
    });
    this.#driving = turn.catch(() => undefined);
    return turn;
  }

  /** Journals a commit's outcome and remembers it while this process leads. */
  async #recordCommitted(id: string, issueId: string, sha: string): Promise<void> {
    const committed = { type: "committed" as const, id, issueId, sha, at: new Date().toISOString() };
    await this.#journal.append(committed);
    this.#committed.push(committed);
  }

  async #finish(entry: QueueEntry, result: SubmitResult): Promise<void> {
    this.#queue.writeResult(result);
    this.#queue.remove(entry.id);
    if (result.status === "held") this.emit("submission-held", { id: result.id, issueId: result.issueId, reason: result.reason });
    if (result.status === "rejected") this.emit("submission-rejected", { id: result.id, issueId: result.issueId, reason: result.reason });
    if (result.status === "committed")
      this.emit("commit-created", { id: result.id, issueId: result.issueId, sha: result.sha, files: result.files });
  }

  /** Refuses a submission; the journal keeps the evidence, also of a refusal: which gate failed and what it said. */
  async #reject(entry: QueueEntry, reason: string, gates: GateResult[] = [], { aborted = false } = {}): Promise<void> {
    await this.#journal.append({
      type: "rejected",
      id: entry.id,
      issueId: entry.issueId,
      reason,
      at: new Date().toISOString(),
      gates: gates.map(({ name, ok, output }) => ({ name, ok, output })),
      ...(aborted && { aborted: true as const }),
    });
    return this.#finish(entry, {
      status: "rejected",
      id: entry.id,
      issueId: entry.issueId,
      reason,
      gates,
      ...(aborted && { aborted: true as const }),
    });
  }

  /** Whether the submitter gave up on an entry: its signal fired (in this process) or it was withdrawn (from any). */
  #abandoned(entry: QueueEntry): boolean {
    return this.#signals.get(entry.id)?.aborted === true || this.#queue.isWithdrawn(entry.id);
  }

  /** The submission's changes as tree entries: a change set's queued blobs, or a trusted worker's files read now. */
  async #changes(entry: QueueEntry, paths: readonly string[]): Promise<TreeChanges | string> {
    if (entry.changes) {
      for (const change of entry.changes)
        if (!change.deleted && !(await this.#objects.has(change.oid)))
          return `the blob of ${change.path} (${change.oid}) is missing: submit it again`;
      return queuedTreeChanges(entry.changes);
    }
    if (this.#bare) return "a bare repository has no working tree to read files from: submit the change set's changes instead";
    try {
      return readWorkerFiles(this.#objects, this.dir, paths);
    } catch (error) {
      if (error instanceof InvalidArgumentError) return error.message;
      throw error;
    }
  }

  async #process(entry: QueueEntry, lock: LeadLock): Promise<void> {
    if (this.#queue.result(entry.id)) return this.#queue.remove(entry.id);
    // Committed before a crash lost its result file: answer from the journal, never commit twice.
    const already = this.#committed.find((item) => item.id === entry.id);
    if (already) return this.#finishJournaled(entry, already.sha);
    if (this.#abandoned(entry)) return this.#reject(entry, "its submitter aborted before the lead took it", [], { aborted: true });
    const checked = checkPaths(entry);
    if (!checked.ok) return this.#reject(entry, checked.reason);
    const { paths } = checked;
    const committedIssue = this.#committed.find((item) => item.issueId === entry.issueId);
    if (committedIssue && !entry.fixup)
      return this.#reject(
        entry,
        `issue ${entry.issueId} already has its commit ${committedIssue.sha.slice(0, 12)}: submit with fixup: true to add to it`,
      );
    const changes = await this.#changes(entry, paths);
    if (typeof changes === "string") return this.#reject(entry, changes);
    if (this.#options.guard) {
      const base = {
        source: this.#options.dir,
        branch: this.branch,
        sha: await readBranch(this.#gitdir, this.branch),
        issueId: entry.issueId,
      };
      const held = await proposeToGuard(this.#options.guard, {
        repo: this.#repo,
        worker: entry.worker,
        store: this.#objects,
        changes,
        base,
      });
      if (held.length > 0)
        return this.#finish(entry, {
          status: "held",
          id: entry.id,
          issueId: entry.issueId,
          reason: `${held.length} file(s) need approval: ${held.map((item) => item.file).join(", ")}`,
          proposals: held,
        });
    }

    const store = this.#objects;
    // The branch's value (what the compare-and-swap or the push's lease expects) and the commit's
    // parent differ only for a missing branch with a start point: then the commit creates the branch.
    let tip = await this.#tip();
    let parent = tip ?? this.#options.startAt;
    if (await this.#decidedByRemote(entry, tip, undefined, paths, [])) return;
    let parentTree = parent ? await store.commitTree(parent) : undefined;
    let tree = await buildTree(store, parentTree, changes);
    if (tree === parentTree) return this.#reject(entry, "the submitted files are identical to the branch: nothing to commit");
    const gates = await this.#runGates(entry, paths, tree);
    if (gates.aborted || this.#abandoned(entry))
      return this.#reject(
        entry,
        `its submitter aborted${gates.results.length > 0 ? ` while gate ${gates.results.at(-1)!.name} ran` : ""}`,
        gates.results,
        { aborted: true },
      );
    if (!gates.ok) return this.#reject(entry, `gate ${gates.results.at(-1)!.name} failed`, gates.results);

    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        const before = parent;
        tip = await this.#tip();
        parent = tip ?? this.#options.startAt;
        if (await this.#decidedByRemote(entry, tip, { parent: before }, paths, gates.results)) return;
        parentTree = parent ? await store.commitTree(parent) : undefined;
        tree = await buildTree(store, parentTree, changes);
        if (tree === parentTree)
          return this.#reject(entry, "the submitted files are identical to the branch: nothing to commit", gates.results);
      }
      const commit = writeCommit(
        store,
        this.#remote ? { ...entry, trailers: { ...entry.trailers, "Bulkhead-Submission": entry.id } } : entry,
        tree,
        parent,
        this.#options.author,
      );
      await lock.assertCurrent();
      // The last moment an abort counts: from the intent on, the commit lands.
      if (this.#abandoned(entry)) return this.#reject(entry, "its submitter aborted before its commit", gates.results, { aborted: true });
      await this.#journal.append({
        type: "intent",
        id: entry.id,
        issueId: entry.issueId,
        worker: entry.worker,
        parent,
        commit,
        paths,
        fence: lock.token,
        ...(this.#remote && { remote: this.#remote.url }),
        at: new Date().toISOString(),
        gates: gates.results.map(({ name, ok, output }) => ({ name, ok, output })),
      });
      // Where the checkouts are brought along from: the branch's old tip (on a remote, the lead's own branch may lag behind).
      let landed: { from: string | undefined; paths: readonly string[] } = { from: parent, paths };
      try {
        if (this.#remote)
          landed = await this.#remote.land({
            parent: tip,
            commit,
            paths,
            message: `commit: ${entry.message}`,
            committer: this.#committer,
            beforePush: () => lock.assertCurrent(),
            pushed: () =>
              this.#journal.append({ type: "pushed", id: entry.id, commit, remote: this.#remote!.url, at: new Date().toISOString() }),
          });
        else
          await compareAndSwapBranch(this.#gitdir, this.branch, tip, commit, {
            message: `commit: ${entry.message}`,
            committer: this.#committer,
            beforeWrite: () => lock.assertCurrent(),
          });
      } catch (error) {
        await this.#journal.append({ type: "aborted", id: entry.id, reason: (error as Error).message, at: new Date().toISOString() });
        if (error instanceof GitConflictError && attempt < (this.#remote?.maxAttempts ?? 3)) continue;
        throw error;
      }
      await this.#recordCommitted(entry.id, entry.issueId, commit);
      // The commit has landed: a checkout that cannot be brought along now (a git process holds
      // index.lock, local changes) shows the paths as changed, but loses nothing.
      const synced = await this.#syncCheckouts(landed.from, commit, landed.paths);
      return this.#finish(entry, {
        status: "committed",
        id: entry.id,
        issueId: entry.issueId,
        sha: commit,
        parent,
        files: paths,
        gates: gates.results,
        ...synced,
      });
    }
  }

  get #committer(): string {
    return `${this.#options.author.name} <${this.#options.author.email}>`;
  }

  /** The branch's tip the next commit builds on: the lead's own branch, or the shared remote's. */
  #tip(): Promise<string | undefined> {
    return this.#remote ? this.#remote.tip() : readBranch(this.#gitdir, this.branch);
  }

  /**
   * On a shared remote, what landed there since this submission's earlier attempts decides it: its
   * own commit (pushed by an attempt that outlived its lead) counts, another commit for the issue
   * or a change to the same files refuses it. True when it was decided.
   */
  async #decidedByRemote(
    entry: QueueEntry,
    tip: string | undefined,
    since: { parent: string | undefined } | undefined,
    paths: readonly string[],
    gates: GateResult[],
  ): Promise<boolean> {
    if (!this.#remote) return false;
    const found = await this.#remote.check({
      id: entry.id,
      issueId: entry.issueId,
      fixup: entry.fixup === true,
      tip,
      ...(since && { since }),
      paths,
      committer: this.#committer,
    });
    if (!found) return false;
    if ("landed" in found) {
      await this.#recordCommitted(entry.id, entry.issueId, found.landed);
      await this.#finishJournaled(entry, found.landed);
    } else await this.#reject(entry, found.refuse, gates);
    return true;
  }

  /**
   * Runs exactly the submission's journaled gates. For a trusted worker's `files` they run in
   * `dir`, where the files are; for a change set, in a fresh checkout of the candidate tree in a
   * temporary directory the lead owns (removed afterwards), so a gate tests the commit itself.
   */
  async #runGates(
    entry: QueueEntry,
    paths: readonly string[],
    tree: string,
  ): Promise<{ ok: boolean; aborted?: true; results: GateResult[] }> {
    const gates = entry.gates ?? [];
    if (gates.length === 0) return { ok: true, results: [] };
    const abortSignal = this.#signals.get(entry.id);
    let dir = this.dir;
    let scratch: string | undefined;
    try {
      if (entry.changes) {
        scratch = mkdtempSync(join(tmpdir(), "bulkhead-gate-"));
        dir = join(scratch, basename(this.dir) || "repo");
        await checkoutTree(this.#objects, tree, dir);
      }
      return await runGates(gates, {
        dir,
        files: paths,
        issueId: entry.issueId,
        functions: entry.owner?.lead === this.#instance ? this.#functions : new Map(),
        onGateEnd: (gate) => this.emit("gate-end", { id: entry.id, issueId: entry.issueId, gate }),
        abortSignal,
      });
    } finally {
      if (scratch) rmSync(scratch, { recursive: true, force: true });
    }
  }

  /**
   * A result another lead wrote may have left a checkout behind: its sync met the path while a
   * restarted worker was writing it again ("local changes"), and left the index entry stale.
   * Syncing again is idempotent and leaves any path that moved on since alone.
   */
  async #resynced(result: SubmitResult): Promise<SubmitResult> {
    if (result.status !== "committed" || result.files.length === 0) return result;
    await this.#syncCheckouts(result.parent, result.sha, result.files).catch(() => undefined);
    return result;
  }

  async #syncCheckouts(
    parent: string | undefined,
    commit: string,
    paths: readonly string[],
  ): Promise<{ indexNotRefreshed?: string; checkoutNotUpdated?: { workdir: string; path: string; reason: string }[] }> {
    const store = this.#objects;
    const indexTimeoutMs = this.#options.lock?.indexTimeoutMs;
    const { indexNotRefreshed, checkoutNotUpdated } = await syncCheckouts({
      store,
      gitdir: this.#gitdir,
      branch: this.branch,
      parentTree: parent ? await store.commitTree(parent) : undefined,
      tree: await store.commitTree(commit),
      paths,
      ...(indexTimeoutMs === undefined ? {} : { timeoutMs: indexTimeoutMs }),
    });
    return {
      ...(indexNotRefreshed === undefined ? {} : { indexNotRefreshed }),
      ...(checkoutNotUpdated.length === 0 ? {} : { checkoutNotUpdated }),
    };
  }
}

/**
 * Creates a commit lead over a repository after checking the options and the repository. It
 * reads and changes nothing else: no lock, no recovery (call `lead.recover()`), so a lead made
 * only to read `status()` leaves the repository exactly as it was.
 *
 * @example
 * await using lead = await createCommitLead({ dir: ".", author: { name: "Lead", email: "lead@example.com" } });
 * const { finished, rolledBack } = await lead.recover();
 */
export async function createCommitLead(options: CommitLeadOptions): Promise<CommitLead> {
  validateOptions(optionsSchema(), options, "options");
  const { gitdir } = gitdirOf(options.dir);
  const head = (() => {
    try {
      return readFileSync(join(gitdir, "HEAD"), "utf8");
    } catch {
      return "";
    }
  })();
  const branch = options.branch ?? /^ref: refs\/heads\/(.+)$/.exec(head.trim())?.[1];
  if (!branch) throw new InvalidArgumentError("options.branch", `${options.dir} has a detached HEAD: pass the branch to commit to`);
  // The start point must be a commit of this repository (isomorphic-git checks the object's type).
  if (options.startAt !== undefined) {
    const startAt = options.startAt;
    const isCommit = await git.readCommit({ fs, gitdir, oid: startAt }).then(
      () => true,
      () => false,
    );
    if (!isCommit)
      throw new InvalidArgumentError("options.startAt", `${startAt} is not a commit in ${options.dir}: pass a commit of that repository`);
  }
  return new CommitLead({ ...options, branch });
}

import { randomBytes } from "node:crypto";
import { execFile } from "node:child_process";
import {
  closeSync,
  fsyncSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { createScopeMatcher, InvalidArgumentError, normalizeRepoPath, TypedEmitter, type MultiRepoGuard, type Usage } from "@bulkhead/core";
import { z } from "zod";
import { GitConflictError, LeadFencedError } from "./git-lead-errors.js";
import { refreshIndex, type IndexUpdate } from "./git-index.js";
import { compareAndSwapBranch, gitTimestamp, readBranch } from "./git-refs.js";
import { Journal, type JournalEntry } from "./journal.js";
import { tryAcquireLeadLock, type LeadLock } from "./lead-lock.js";
import { ObjectStore, type TreeEntry } from "./object-store.js";

/** A validation gate: a command (argument list) or a function. Both fail closed. */
export type Gate =
  | { name: string; command: readonly string[]; timeoutMs?: number }
  | {
      name: string;
      run: (context: {
        dir: string;
        files: readonly string[];
        issueId: string;
      }) => Promise<{ ok: boolean; output?: string }> | { ok: boolean; output?: string };
      timeoutMs?: number;
    };

export interface GateResult {
  name: string;
  ok: boolean;
  /** The last 4 KB of output, or the error, kept as evidence. */
  output: string;
  durationMs: number;
}

/** One worker's request to commit its files for an issue. */
export interface Submission {
  issueId: string;
  worker: string;
  /** Paths relative to the repo, as they are on disk now; a missing file is a deletion. */
  files: string[];
  message: string;
  /** Files, directories or globs the worker may write; files outside are refused. */
  manifest?: string[];
  trailers?: Record<string, string>;
  usage?: Pick<Usage, "inputTokens" | "outputTokens">;
  /** Commit again for an issue that already has its commit. */
  fixup?: boolean;
  /** An idempotency key: submitting the same id twice yields one outcome. @default random */
  id?: string;
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
      /** Set when the commit landed but the index could not be refreshed (`index.lock` held too long). */
      indexNotRefreshed?: string;
    }
  | { status: "held"; id: string; issueId: string; reason: string; proposals: { file: string; proposalId: string }[] }
  | { status: "rejected"; id: string; issueId: string; reason: string; gates: GateResult[] };

export interface CommitLeadEvents {
  "submission-queued": { id: string; issueId: string; worker: string };
  "gate-end": { id: string; issueId: string; gate: GateResult };
  "commit-created": { id: string; issueId: string; sha: string; files: string[] };
  "submission-held": { id: string; issueId: string; reason: string };
  "submission-rejected": { id: string; issueId: string; reason: string };
}

export interface CommitLeadOptions {
  /** The repository's working tree. */
  dir: string;
  /** The branch the lead commits to. @default the branch checked out in `dir` */
  branch?: string;
  author: { name: string; email: string };
  gates?: readonly Gate[];
  /** Cross-repo or out-of-scope writes are held here instead of committed. */
  guard?: Pick<MultiRepoGuard, "propose">;
  /** The repo's name for the guard. @default the directory's name */
  repo?: string;
  /**
   * `leaseMs`: how long a lead's lease lasts without renewal (renewed every third of it).
   * `indexTimeoutMs`: how long to wait for git's `index.lock` after a commit (default 10 s).
   */
  lock?: { leaseMs?: number; indexTimeoutMs?: number };
}

const optionsSchema = z.object({
  dir: z.string().min(1),
  branch: z
    .string()
    .regex(/^(?!.*\.\.)(?!\/)[A-Za-z0-9._/-]+$/, "expected a branch name")
    .optional(),
  author: z.object({ name: z.string().min(1), email: z.string().min(1) }),
  gates: z.array(z.object({ name: z.string().min(1) }).passthrough()).optional(),
  guard: z
    .custom<Pick<MultiRepoGuard, "propose">>(
      (value) => typeof (value as MultiRepoGuard | undefined)?.propose === "function",
      "expected a MultiRepoGuard",
    )
    .optional(),
  repo: z.string().min(1).optional(),
  lock: z.object({ leaseMs: z.number().int().positive().optional(), indexTimeoutMs: z.number().int().positive().optional() }).optional(),
});
const submissionSchema = z.object({
  issueId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,127}$/, "expected an issue id"),
  worker: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/, "expected a worker name"),
  files: z.array(z.string().min(1)).min(1, "list at least one file").max(10_000),
  message: z.string().trim().min(1, "write a commit message"),
  manifest: z.array(z.string().min(1)).optional(),
  trailers: z
    .record(z.string().regex(/^[A-Za-z][A-Za-z0-9-]*$/, "trailer names are words joined by '-'"), z.string().regex(/^[^\n]*$/, "one line"))
    .optional(),
  usage: z.object({ inputTokens: z.number().int().nonnegative(), outputTokens: z.number().int().nonnegative() }).optional(),
  fixup: z.boolean().optional(),
  id: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,100}$/, "expected an id of letters, digits, '_' or '-'")
    .optional(),
});

interface QueueEntry extends Submission {
  id: string;
  queuedAt: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function runCommand(command: readonly string[], cwd: string, timeoutMs: number): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(
      command[0]!,
      command.slice(1),
      { cwd, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, encoding: "utf8" },
      (error, stdout, stderr) => {
        const output = `${stdout}${stderr}`.slice(-4096);
        if (!error) return resolve({ ok: true, output });
        const reason = (error as { killed?: boolean }).killed
          ? `timed out after ${timeoutMs} ms`
          : `exit ${(error as { code?: unknown }).code}`;
        resolve({ ok: false, output: `${output}\n[${reason}]`.slice(-4096) });
      },
    );
  });
}

/**
 * Workers write, the lead commits (seed 001). A lead takes submissions from any number of
 * workers, in this process and others, through a durable queue in `.git/bulkhead`, one at a time
 * and in order. Each is checked against the worker's manifest and the guard, run through the
 * gates, and committed as exactly one commit for its issue, straight from objects: blobs for the
 * submitted files, trees rebuilt only along the changed paths, a commit, and a compare-and-swap
 * of the branch under git's ref lock. Only those paths' index entries are refreshed, under
 * `index.lock`. A journal (intent, then outcome) and a fenced cross-process lock make it safe to
 * kill at any moment: `recover()` finishes or rolls back the entry in flight.
 *
 * @example
 * const lead = await createCommitLead({ dir: "backend-api", author: { name: "Lead", email: "lead@example.com" } });
 * const result = await lead.submit({ issueId: "RATE-1", worker: "agent-1", files: ["src/middleware/rateLimit.ts"], message: "Add rate limiting" });
 */
export class CommitLead extends TypedEmitter<CommitLeadEvents> {
  readonly dir: string;
  readonly branch: string;
  readonly #gitdir: string;
  readonly #state: string;
  readonly #journal: Journal;
  readonly #options: CommitLeadOptions;
  readonly #repo: string;
  #driving: Promise<void> = Promise.resolve();
  /** The journal's committed entries, read when this process becomes the lead and kept current while it leads. */
  #committed: Extract<JournalEntry, { type: "committed" }>[] = [];
  /** One object store per lead, so its pack cache lives across commits. */
  readonly #objects: ObjectStore;

  /** Use {@link createCommitLead}. */
  constructor(options: CommitLeadOptions & { branch: string }) {
    super();
    this.#options = options;
    this.dir = options.dir;
    this.branch = options.branch;
    this.#gitdir = join(options.dir, ".git");
    this.#state = join(this.#gitdir, "bulkhead");
    this.#journal = new Journal(join(this.#state, "journal.jsonl"));
    this.#repo = options.repo ?? basename(options.dir);
    this.#objects = new ObjectStore(this.#gitdir, this.dir);
  }

  /** Queues a submission durably and resolves with its outcome, whichever process commits it. */
  async submit(submission: Submission): Promise<SubmitResult> {
    const parsed = submissionSchema.safeParse(submission);
    if (!parsed.success)
      throw new InvalidArgumentError(
        "submission",
        parsed.error.issues.map((issue) => `${issue.path.join(".") || "(submission)"}: ${issue.message}`).join("; "),
      );
    const id = parsed.data.id ?? `s${Date.now().toString(36)}${randomBytes(6).toString("hex")}`;
    const entry: QueueEntry = {
      ...(parsed.data as Submission),
      id,
      queuedAt: `${Date.now().toString().padStart(15, "0")}.${process.hrtime.bigint().toString().padStart(20, "0")}`,
    };
    const queueDir = join(this.#state, "queue");
    mkdirSync(queueDir, { recursive: true });
    const existing = await this.#result(id);
    if (existing) return existing;
    const staged = join(queueDir, `${id}.json.tmp-${process.pid}`);
    try {
      const descriptor = openSync(staged, "w");
      writeSync(descriptor, JSON.stringify(entry));
      fsyncSync(descriptor);
      closeSync(descriptor);
      // Link, not rename: an entry already queued under this id (a retry) is kept as it is.
      try {
        linkSync(staged, join(queueDir, `${id}.json`));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
    } finally {
      rmSync(staged, { force: true });
    }
    this.emit("submission-queued", { id, issueId: entry.issueId, worker: entry.worker });
    for (;;) {
      const result = await this.#result(id);
      if (result) return result;
      await this.#drive();
      if (!(await this.#result(id))) await sleep(5 + Math.random() * 20);
    }
  }

  /**
   * Finishes or rolls back the entry in flight after a crash: its commit counts when the branch
   * points at it, otherwise it is rolled back and its submission, still queued, runs again.
   * Every new lead runs it before taking work; call it yourself to recover without submitting.
   * Waits for a live lead to finish first.
   */
  async recover({ timeoutMs = 30_000 } = {}): Promise<{ finished: string[]; rolledBack: string[] }> {
    const started = Date.now();
    for (;;) {
      const lock = await tryAcquireLeadLock(this.#state, { leaseMs: this.#options.lock?.leaseMs ?? 30_000 });
      if (lock) {
        try {
          return await this.#recover();
        } finally {
          await lock.release();
        }
      }
      if (Date.now() - started > timeoutMs)
        throw new GitConflictError(`another lead has held ${this.#state} for ${timeoutMs} ms: recover when it is done`);
      await sleep(20);
    }
  }

  async #recover(): Promise<{ finished: string[]; rolledBack: string[] }> {
    const outcome = { finished: [] as string[], rolledBack: [] as string[] };
    const entries = await this.#journal.read();
    this.#committed = entries.filter((entry): entry is Extract<JournalEntry, { type: "committed" }> => entry.type === "committed");
    const ended = new Set(entries.filter((entry) => entry.type !== "intent").map((entry) => entry.id));
    const open = entries.filter(
      (entry): entry is Extract<JournalEntry, { type: "intent" }> => entry.type === "intent" && !ended.has(entry.id),
    );
    const tip = await readBranch(this.#gitdir, this.branch);
    for (const intent of open) {
      if (intent.commit === tip) {
        await this.#recordCommitted(intent.id, intent.issueId, intent.commit);
        await this.#refreshFromHead(intent.paths);
        await this.#writeResult({
          status: "committed",
          id: intent.id,
          issueId: intent.issueId,
          sha: intent.commit,
          parent: intent.parent,
          files: intent.paths,
          gates: intent.gates.map((gate) => ({ ...gate, durationMs: 0 })),
        });
        outcome.finished.push(intent.id);
      } else {
        await this.#journal.append({
          type: "aborted",
          id: intent.id,
          reason: "the lead stopped before the branch moved",
          at: new Date().toISOString(),
        });
        outcome.rolledBack.push(intent.id);
      }
    }
    return outcome;
  }

  /** Queue, entry in flight, recent commits and held submissions. */
  async status(): Promise<{
    queue: string[];
    inFlight: string | undefined;
    recentCommits: { id: string; issueId: string; sha: string }[];
    held: SubmitResult[];
  }> {
    const queue = (await this.#queue()).map((entry) => entry.id);
    const entries = await this.#journal.read();
    const ended = new Set(entries.filter((entry) => entry.type !== "intent").map((entry) => entry.id));
    const inFlight = entries.find((entry) => entry.type === "intent" && !ended.has(entry.id))?.id;
    const recentCommits = entries
      .filter((entry): entry is Extract<JournalEntry, { type: "committed" }> => entry.type === "committed")
      .slice(-20)
      .map(({ id, issueId, sha }) => ({ id, issueId, sha }));
    const committedIssues = new Set(entries.flatMap((entry) => (entry.type === "committed" ? [entry.issueId] : [])));
    const results = await readdir(join(this.#state, "results")).catch(() => [] as string[]);
    const held: SubmitResult[] = [];
    for (const name of results) {
      const result = await this.#result(name.replace(/\.json$/, ""));
      // Held until approved: once the issue is committed (resubmitted after approval), it is not held any more.
      if (result?.status === "held" && !committedIssues.has(result.issueId)) held.push(result);
    }
    return { queue, inFlight, recentCommits, held };
  }

  /** Closes the journal. Idempotent. */
  async close(): Promise<void> {
    await this.#journal.close();
  }

  /** Becomes the lead if nobody is, and works through the queue. Calls in this process take turns. */
  #drive(): Promise<void> {
    const turn = this.#driving.then(async () => {
      const leaseMs = this.#options.lock?.leaseMs ?? 30_000;
      const lock = await tryAcquireLeadLock(this.#state, { leaseMs });
      if (!lock) return;
      // The lease is kept alive while this process leads, also through a gate that runs for
      // minutes. If another lead took over, renewing fails and the next write is fenced.
      const keepAlive = setInterval(() => void lock.renew().catch(() => undefined), Math.max(20, leaseMs / 3));
      keepAlive.unref();
      try {
        await this.#recover();
        for (;;) {
          const [next] = await this.#queue();
          if (!next) break;
          await lock.renewIfDue();
          try {
            await this.#process(next, lock);
          } catch (error) {
            // Taken over: the new lead owns the queue now. Anything else fails this one submission, not the queue.
            if (error instanceof LeadFencedError) return;
            await this.#finish(next, {
              status: "rejected",
              id: next.id,
              issueId: next.issueId,
              reason: `the lead could not commit it: ${(error as Error).message}`,
              gates: [],
            });
          }
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

  async #queue(): Promise<QueueEntry[]> {
    const dir = join(this.#state, "queue");
    let names: string[];
    try {
      names = readdirSync(dir).filter((name) => name.endsWith(".json"));
    } catch {
      return [];
    }
    const entries: QueueEntry[] = [];
    for (const name of names) {
      try {
        entries.push(JSON.parse(readFileSync(join(dir, name), "utf8")) as QueueEntry);
      } catch (error) {
        // Gone meanwhile (finished by another lead), or torn by a crash before its link: skip or drop.
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") rmSync(join(dir, name), { force: true });
      }
    }
    return entries.sort((left, right) => (left.queuedAt < right.queuedAt ? -1 : left.queuedAt > right.queuedAt ? 1 : 0));
  }

  async #result(id: string): Promise<SubmitResult | undefined> {
    try {
      return JSON.parse(readFileSync(join(this.#state, "results", `${id}.json`), "utf8")) as SubmitResult;
    } catch {
      return undefined;
    }
  }

  /** The outcome, written to a temporary file and renamed; the journal, not this file, is the record. */
  async #writeResult(result: SubmitResult): Promise<void> {
    const results = join(this.#state, "results");
    mkdirSync(results, { recursive: true });
    const temporary = join(results, `.${result.id}.${process.pid}.tmp`);
    writeFileSync(temporary, JSON.stringify(result));
    renameSync(temporary, join(results, `${result.id}.json`));
  }

  async #finish(entry: QueueEntry, result: SubmitResult): Promise<void> {
    await this.#writeResult(result);
    rmSync(join(this.#state, "queue", `${entry.id}.json`), { force: true });
    if (result.status === "held") this.emit("submission-held", { id: result.id, issueId: result.issueId, reason: result.reason });
    if (result.status === "rejected") this.emit("submission-rejected", { id: result.id, issueId: result.issueId, reason: result.reason });
    if (result.status === "committed")
      this.emit("commit-created", { id: result.id, issueId: result.issueId, sha: result.sha, files: result.files });
  }

  async #process(entry: QueueEntry, lock: LeadLock): Promise<void> {
    const done = await this.#result(entry.id);
    if (done) return void rmSync(join(this.#state, "queue", `${entry.id}.json`), { force: true });
    const journal = this.#committed;
    // Committed before a crash lost its result file: answer from the journal, never commit twice.
    const already = journal.find((item) => item.id === entry.id);
    if (already)
      return this.#finish(entry, {
        status: "committed",
        id: entry.id,
        issueId: entry.issueId,
        sha: already.sha,
        parent: undefined,
        files: entry.files,
        gates: [],
      });
    const reject = async (reason: string, gates: GateResult[] = []) => {
      // The journal keeps the evidence, also of a refusal: which gate failed and what it said.
      await this.#journal.append({
        type: "rejected",
        id: entry.id,
        issueId: entry.issueId,
        reason,
        at: new Date().toISOString(),
        gates: gates.map(({ name, ok, output }) => ({ name, ok, output })),
      });
      return this.#finish(entry, { status: "rejected", id: entry.id, issueId: entry.issueId, reason, gates });
    };

    const paths: string[] = [];
    for (const file of entry.files) {
      const normalized = normalizeRepoPath(file);
      if (!normalized.ok || normalized.path === "." || normalized.path.split("/").some((segment) => segment.toLowerCase() === ".git")) {
        return reject(`file "${file}" ${normalized.ok ? "is not a file inside the repo" : normalized.reason}`);
      }
      if (!paths.includes(normalized.path)) paths.push(normalized.path);
    }
    if (entry.manifest) {
      const allowed = createScopeMatcher(
        entry.manifest
          .map((path) => normalizeRepoPath(path))
          .filter((path) => path.ok)
          .map((path) => (path as { path: string }).path),
        [],
      );
      const outside = paths.filter((path) => !allowed(path));
      if (outside.length > 0) return reject(`files outside ${entry.worker}'s manifest: ${outside.join(", ")}`);
    }
    const committedIssue = journal.find((item) => item.issueId === entry.issueId);
    if (committedIssue && !entry.fixup) {
      return reject(
        `issue ${entry.issueId} already has its commit ${(committedIssue as { sha: string }).sha.slice(0, 12)}: submit with fixup: true to add to it`,
      );
    }
    if (this.#options.guard) {
      const held: { file: string; proposalId: string }[] = [];
      for (const path of paths) {
        const content = await readFile(join(this.dir, path), "utf8").catch(() => undefined);
        const outcome = await this.#options.guard.propose({
          repo: this.#repo,
          file: path,
          diff: content === undefined ? `deleted ${path}` : `+++ ${path}\n${content}`,
          author: entry.worker,
        });
        if (outcome.status === "pending") held.push({ file: path, proposalId: outcome.id });
      }
      if (held.length > 0) {
        return this.#finish(entry, {
          status: "held",
          id: entry.id,
          issueId: entry.issueId,
          reason: `${held.length} file(s) need approval: ${held.map((item) => item.file).join(", ")}`,
          proposals: held,
        });
      }
    }

    const gates: GateResult[] = [];
    for (const gate of this.#options.gates ?? []) {
      const started = Date.now();
      const timeoutMs = gate.timeoutMs ?? 300_000;
      let outcome: { ok: boolean; output: string };
      try {
        outcome =
          "command" in gate
            ? await runCommand(gate.command, this.dir, timeoutMs)
            : await Promise.race([
                Promise.resolve(gate.run({ dir: this.dir, files: paths, issueId: entry.issueId })).then((value) => ({
                  ok: value.ok === true,
                  output: String(value.output ?? "").slice(-4096),
                })),
                sleep(timeoutMs).then(() => ({ ok: false, output: `timed out after ${timeoutMs} ms` })),
              ]);
      } catch (error) {
        outcome = { ok: false, output: `gate threw: ${(error as Error).message}` };
      }
      const result = { name: gate.name, ...outcome, durationMs: Date.now() - started };
      gates.push(result);
      this.emit("gate-end", { id: entry.id, issueId: entry.issueId, gate: result });
      if (!result.ok) return reject(`gate ${gate.name} failed`, gates);
    }

    for (let attempt = 0; ; attempt++) {
      const parent = await readBranch(this.#gitdir, this.branch);
      const built = await this.#build(entry, paths, parent);
      if (built === "unchanged") return reject("the submitted files are identical to the branch: nothing to commit", gates);
      await lock.assertCurrent();
      await this.#journal.append({
        type: "intent",
        id: entry.id,
        issueId: entry.issueId,
        worker: entry.worker,
        parent,
        commit: built.commit,
        paths,
        fence: lock.token,
        at: new Date().toISOString(),
        gates: gates.map(({ name, ok, output }) => ({ name, ok, output })),
      });
      try {
        await compareAndSwapBranch(this.#gitdir, this.branch, parent, built.commit, {
          message: `commit: ${entry.message}`,
          committer: `${this.#options.author.name} <${this.#options.author.email}>`,
          beforeWrite: () => lock.assertCurrent(),
        });
      } catch (error) {
        await this.#journal.append({ type: "aborted", id: entry.id, reason: (error as Error).message, at: new Date().toISOString() });
        if (error instanceof GitConflictError && attempt < 3) continue;
        throw error;
      }
      await this.#recordCommitted(entry.id, entry.issueId, built.commit);
      // The commit has landed: an index that cannot be refreshed now (a git process holds
      // index.lock) makes `git status` show the paths as changed, but loses nothing.
      let indexNotRefreshed: string | undefined;
      if (await this.#isCheckedOut()) {
        const indexTimeoutMs = this.#options.lock?.indexTimeoutMs;
        await refreshIndex(this.dir, this.#gitdir, built.index, indexTimeoutMs === undefined ? {} : { timeoutMs: indexTimeoutMs }).catch(
          (error: unknown) => {
            indexNotRefreshed = `${(error as Error).message}; run \`git reset -- <files>\` to refresh the index`;
          },
        );
      }
      return this.#finish(entry, {
        status: "committed",
        id: entry.id,
        issueId: entry.issueId,
        sha: built.commit,
        parent,
        files: paths,
        gates,
        ...(indexNotRefreshed === undefined ? {} : { indexNotRefreshed }),
      });
    }
  }

  /** Writes blobs, trees along the changed paths, and the commit. */
  async #build(
    entry: QueueEntry,
    paths: readonly string[],
    parent: string | undefined,
  ): Promise<{ commit: string; index: IndexUpdate[] } | "unchanged"> {
    const store = this.#objects;
    const parentTree = parent ? await store.commitTree(parent) : undefined;
    const changes = new Map<string, TreeEntry | null>();
    const index: IndexUpdate[] = [];
    for (const path of paths) {
      const absolute = join(this.dir, path);
      const before = lstatSync(absolute, { throwIfNoEntry: false });
      if (!before) {
        changes.set(path, null);
        index.push({ path, deleted: true });
        continue;
      }
      if (!before.isFile() && !before.isSymbolicLink()) throw new InvalidArgumentError("files", `${path} is not a file`);
      const content = before.isSymbolicLink() ? Buffer.from(readlinkSync(absolute)) : readFileSync(absolute);
      const after = lstatSync(absolute);
      // Stats from before the read go into the index: if the file changes later, git sees it.
      if (after.mtimeMs !== before.mtimeMs || after.size !== before.size)
        throw new GitConflictError(`${path} changed while the lead read it: submit again when the worker is done writing`);
      const mode = before.isSymbolicLink() ? 0o120000 : before.mode & 0o111 ? 0o100755 : 0o100644;
      const oid = store.write("blob", content);
      changes.set(path, { mode: mode.toString(8), name: path, oid });
      index.push({ path, deleted: false, oid, mode, stats: before });
    }
    const tree = (await this.#updateTree(store, parentTree, "", changes)) ?? store.writeTree([]);
    if (tree === parentTree) return "unchanged";
    const trailers = {
      "Bulkhead-Issue": entry.issueId,
      "Bulkhead-Worker": entry.worker,
      ...(entry.usage
        ? {
            "Bulkhead-Tokens": `${entry.usage.inputTokens + entry.usage.outputTokens} (in ${entry.usage.inputTokens}, out ${entry.usage.outputTokens})`,
          }
        : {}),
      ...entry.trailers,
    };
    const message = `${entry.message.trim()}\n\n${Object.entries(trailers)
      .map(([key, value]) => `${key}: ${value}`)
      .join("\n")}\n`;
    const who = `${this.#options.author.name} <${this.#options.author.email}> ${gitTimestamp()}`;
    const body = `tree ${tree}\n${parent ? `parent ${parent}\n` : ""}author ${who}\ncommitter ${who}\n\n${message}`;
    return { commit: store.write("commit", Buffer.from(body)), index };
  }

  /** Rebuilds one tree level: entries changed here, and subtrees that contain changes. */
  async #updateTree(
    store: ObjectStore,
    oid: string | undefined,
    prefix: string,
    changes: ReadonlyMap<string, TreeEntry | null>,
  ): Promise<string | undefined> {
    const entries = new Map((oid ? await store.readTree(oid) : []).map((entry) => [entry.name, entry]));
    const below = new Map<string, Map<string, TreeEntry | null>>();
    for (const [path, change] of changes) {
      if (!path.startsWith(prefix)) continue;
      const rest = path.slice(prefix.length);
      const slash = rest.indexOf("/");
      if (slash === -1) {
        if (change === null) entries.delete(rest);
        else entries.set(rest, { ...change, name: rest });
        continue;
      }
      const name = rest.slice(0, slash);
      if (!below.has(name)) below.set(name, new Map());
      below.get(name)!.set(path, change);
    }
    for (const [name, nested] of below) {
      const existing = entries.get(name);
      const subtree = await this.#updateTree(store, existing?.mode === "40000" ? existing.oid : undefined, `${prefix}${name}/`, nested);
      if (subtree === undefined) entries.delete(name);
      else entries.set(name, { mode: "40000", name, oid: subtree });
    }
    // Content-addressed: an unchanged level writes the same tree id again.
    return entries.size === 0 ? undefined : store.writeTree([...entries.values()]);
  }

  async #isCheckedOut(): Promise<boolean> {
    try {
      return readFileSync(join(this.#gitdir, "HEAD"), "utf8").trim() === `ref: refs/heads/${this.branch}`;
    } catch {
      return false;
    }
  }

  async #refreshFromHead(paths: readonly string[]): Promise<void> {
    if (!(await this.#isCheckedOut()) || paths.length === 0) return;
    await new Promise<void>((resolve) => execFile("git", ["reset", "--quiet", "HEAD", "--", ...paths], { cwd: this.dir }, () => resolve()));
  }
}

/** Creates a commit lead over a repository, after checking it and running `recover()` when free. */
export async function createCommitLead(options: CommitLeadOptions): Promise<CommitLead> {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success)
    throw new InvalidArgumentError(
      "options",
      parsed.error.issues.map((issue) => `${issue.path.join(".") || "(options)"}: ${issue.message}`).join("; "),
    );
  const head = await readFile(join(options.dir, ".git", "HEAD"), "utf8").catch(() => undefined);
  if (head === undefined)
    throw new InvalidArgumentError("options.dir", `${options.dir} is not the root of a git working tree (no .git/HEAD)`);
  const branch = options.branch ?? /^ref: refs\/heads\/(.+)$/.exec(head.trim())?.[1];
  if (!branch) throw new InvalidArgumentError("options.branch", `${options.dir} has a detached HEAD: pass the branch to commit to`);
  const lead = new CommitLead({ ...options, branch });
  // Run on start: finish or roll back what a crashed lead left in flight. A live lead holding the
  // lock has done that already when it took over.
  await lead.recover({ timeoutMs: 0 }).catch((error: unknown) => {
    if (!(error instanceof GitConflictError)) throw error;
  });
  return lead;
}

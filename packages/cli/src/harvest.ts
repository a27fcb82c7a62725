import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  BulkheadError,
  type BulkheadErrorOptions,
  type ChangeSet,
  type ChangedPath,
  type MultiRepoGuard,
  type TaskSpec,
  throwIfAborted,
  type UsageReport,
  validateOptions,
  errorMarker,
} from "@bulkhead/core";
import { createCommitLead, type Gate, type GateResult } from "@bulkhead/git-lead";
import { buildHandover, handoverSchema, type HandoverDocument } from "@bulkhead/handover";
import type { FetchResult, Session } from "@bulkhead/sandbox";
import { z } from "zod";
import { unifiedDiff } from "./unified-diff.js";

/** Harvest could not finish: the message names the step and what to look at. */
export class HarvestError extends BulkheadError {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("HarvestError");

  constructor(message: string, options: BulkheadErrorOptions = {}) {
    super("HARVEST_FAILED", message, options);
    this.name = "HarvestError";
  }
}

/** What {@link harvest} takes. */
export interface HarvestOptions {
  /** The session whose workspace is harvested (its container is paused while it is read). */
  session: Session;
  /** The task: its id is the issue of the lead's commit, its ownership the guard's rules. */
  spec: TaskSpec;
  /** Decides per changed path: the primary repo's in-scope paths pass, others are held as proposals. */
  guard: MultiRepoGuard;
  /** The lead's commit author. */
  author: { name: string; email: string };
  /**
   * The branch of each source repository the lead commits to; when missing, the lead's commit
   * creates it on the session's base commit (no branch exists before its commit does). @default `bulkhead/<session id>` (the user's checked-out branch is left alone)
   */
  branch?: string;
  /** Validation gates, run by the lead on a checkout of the candidate commit. */
  gates?: readonly Gate[];
  /** The commit message. @default the spec's task */
  message?: string;
  /** The tracker's report: its usage goes into the commit, the report into the handover. */
  report?: UsageReport;
  /** Tool-result tokens the gateway charged to the tool-call budget: the handover's tool-call line (see buildHandover). */
  toolResultTokens?: number;
  /** What was done, for the handover. @default ["Ran the agent for \"<task>\""] */
  summary?: readonly string[];
  /** What the next task depends on, for the handover. */
  next?: readonly string[];
  notes?: readonly string[];
  /** Ids of the project-memory entries the agent was given (the dispatch record's `memory.given`), for the handover. */
  memoryGiven?: readonly string[];
  /** Forces the handover's status; otherwise "partial" when anything was held. */
  status?: HandoverDocument["status"];
  /** The author recorded on proposals. @default `agent@<session id>` */
  proposer?: string;
  /** Each step as it starts. */
  onProgress?: (line: string) => void;
  abortSignal?: AbortSignal;
}

/** What {@link harvest} did. */
export interface HarvestResult {
  /** The one read of the workspace everything else was decided from. */
  changes: ChangeSet;
  /** One commit per repo the agent changed and the guard allowed, the primary first. */
  commits: { repo: string; branch: string; sha: string; files: string[]; gates: GateResult[] }[];
  /** Paths the guard held for a person's decision. */
  held: { repo: string; file: string; id: string }[];
  /** Paths whose exact change a person rejected before: not committed, not held again. */
  refused: { repo: string; file: string; id: string; by: string; at: string; reason: string }[];
  /** The change recorded in each source repo (`refs/bulkhead/<session>/<session>`), so `remove()` agrees. */
  fetched: FetchResult[];
  handover: HandoverDocument;
}

const optionsSchema = z.object({
  session: z.custom<Session>((value) => typeof (value as Session | undefined)?.changes === "function", "expected a Session"),
  spec: z.custom<TaskSpec>((value) => typeof (value as TaskSpec | undefined)?.task === "string", "expected a TaskSpec"),
  guard: z.custom<MultiRepoGuard>(
    (value) => typeof (value as MultiRepoGuard | undefined)?.propose === "function",
    "expected a MultiRepoGuard",
  ),
  author: z.object({ name: z.string().min(1), email: z.string().min(1) }),
  branch: z
    .string()
    .regex(/^(?!.*\.\.)(?!\/)(?!.*\.lock$)[A-Za-z0-9._/-]+$/, "expected a branch name")
    .optional(),
  gates: z.array(z.any()).max(64).optional(),
  message: z.string().min(1).max(100_000).optional(),
  report: z.any().optional(),
  toolResultTokens: z.number().int().nonnegative().optional(),
  summary: z.array(z.string()).optional(),
  next: z.array(z.string()).optional(),
  notes: z.array(z.string()).optional(),
  memoryGiven: z.array(z.string()).optional(),
  status: z.enum(["complete", "partial", "blocked"]).optional(),
  proposer: z.string().min(1).max(200).optional(),
  onProgress: z.function().optional(),
  abortSignal: z.instanceof(AbortSignal).optional(),
});

/** Blobs of a trusted source repository, by id, from one `git cat-file --batch` there. */
function readBlobs(source: string, oids: readonly string[]): Promise<Map<string, Buffer>> {
  const unique = [...new Set(oids)];
  if (unique.length === 0) return Promise.resolve(new Map());
  return new Promise((resolve, reject) => {
    const child = spawn("git", ["-C", source, "cat-file", "--batch"], { stdio: ["pipe", "pipe", "pipe"] });
    const chunks: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`git cat-file --batch in ${source}: ${stderr.trim() || `exit ${code}`}`));
      const out = Buffer.concat(chunks);
      const blobs = new Map<string, Buffer>();
      let offset = 0;
      while (offset < out.length) {
        const newline = out.indexOf(10, offset);
        const [oid = "", type, size] = out.toString("latin1", offset, newline).split(" ");
        offset = newline + 1;
        if (type === "missing" || size === undefined) continue;
        blobs.set(oid, out.subarray(offset, offset + Number(size)));
        offset += Number(size) + 1;
      }
      resolve(blobs);
    });
    child.stdin.end(`${unique.join("\n")}\n`);
  });
}

/** The diff a proposal holds: the base content from the source repo, the new from the change set. */
function diffOf(change: ChangedPath, blobs: ReadonlyMap<string, Buffer>): string {
  const before = change.base ? blobs.get(change.base.oid) : undefined;
  return unifiedDiff({
    path: change.path,
    before: change.base?.mode === "120000" ? undefined : before,
    after: change.entry?.type === "file" ? change.entry.bytes : undefined,
    beforeOid: change.base?.oid,
    afterOid: change.entry?.oid,
    link: change.entry?.type === "link" ? change.entry.target : undefined,
  });
}

/**
 * The harvest of a session, as one library function (the CLI's `harvest` and `finish` and the
 * demo call it): read what the agent changed once (`session.changes()`), let the guard decide per
 * path (a held path is proposed with a unified diff against the base that keeps the whole new
 * content), have the lead commit the allowed paths from the change set's bytes into each SOURCE
 * repository (never the agent's clone), record the change in the source repos (`fetchCode`), and
 * build the handover from the same change set. Nothing runs in the workspace. Harvesting the same
 * workspace again, from any process, gives the same commits.
 *
 * @example
 * const result = await harvest({ session, spec, guard, author: { name: "Lead", email: "lead@example.com" } });
 * console.log(result.commits[0]?.sha, result.held);
 */
export async function harvest(options: HarvestOptions): Promise<HarvestResult> {
  const parsed = validateOptions(optionsSchema, options, "options");
  const { session, spec, guard, author, abortSignal } = options;
  const progress = options.onProgress ?? (() => undefined);
  const primary = spec.ownership.primaryRepo;
  const branch = parsed.branch ?? `bulkhead/${session.id}`;
  const proposer = parsed.proposer ?? `agent@${session.id}`;
  throwIfAborted(abortSignal, "harvest");

  // Over its disk limit (resources.diskMb), a workspace is not harvested: DiskLimitError.
  if (session.state.diskLimitBytes !== undefined) await session.assertWithinDisk();
  progress("reading the workspace (container paused)");
  const changes = await session.changes(abortSignal ? { abortSignal } : {});

  progress("checking every changed path against the guard");
  const held: HarvestResult["held"] = [];
  const refused: HarvestResult["refused"] = [];
  const allowed = new Map<string, ChangedPath[]>();
  for (const repo of changes.repos) {
    if (repo.paths.length === 0) continue;
    const source = session.state.repos.find((entry) => entry.name === repo.repo)!.source;
    const blobs = await readBlobs(
      source,
      repo.paths.flatMap((change) => (change.base ? [change.base.oid] : [])),
    );
    for (const change of repo.paths) {
      // The whole change and where it lands go with the proposal, so an approval can commit it.
      const target = { source, branch, baseSha: repo.baseSha, issueId: spec.id ?? "task", session: session.id };
      const outcome = await guard.propose({
        repo: repo.repo,
        file: change.path,
        diff: diffOf(change, blobs),
        author: proposer,
        change,
        target,
      });
      if (outcome.status === "pending") held.push({ repo: repo.repo, file: change.path, id: outcome.id });
      else if (outcome.status === "refused") refused.push({ repo: repo.repo, file: change.path, id: outcome.id, ...outcome.rejection });
      else allowed.set(repo.repo, [...(allowed.get(repo.repo) ?? []), change]);
    }
  }

  // One commit per repo through its lead, in the source repository: the primary first.
  const commits: HarvestResult["commits"] = [];
  const order = [...allowed.keys()].sort((left, right) => Number(right === primary) - Number(left === primary) || (left < right ? -1 : 1));
  for (const repoName of order) {
    throwIfAborted(abortSignal, "harvest");
    const paths = allowed.get(repoName)!;
    const repo = changes.repos.find((entry) => entry.repo === repoName)!;
    const source = session.state.repos.find((entry) => entry.name === repoName)!.source;
    progress(`committing ${paths.length} path(s) of ${repoName} in ${source} through the lead`);
    const lead = await createCommitLead({
      dir: source,
      branch,
      // A missing branch is created by the lead's commit itself, on the session's base: a harvest
      // stopped before that commit leaves no branch behind, not one at the base without its commit.
      startAt: repo.baseSha,
      author,
      repo: repoName,
      ...(options.gates ? { gates: options.gates } : {}),
    });
    try {
      // The same session, repo and change: the same submission, so a second harvest (another
      // process, after a crash) gets the first one's outcome instead of a second commit.
      const id = `harvest-${createHash("sha256")
        .update(`${session.id}\0${repoName}\0${paths.map((change) => `${change.path}\0${change.entry?.oid ?? "-"}`).join("\0")}`)
        .digest("hex")
        .slice(0, 32)}`;
      const result = await lead.submit({
        id,
        issueId: spec.id ?? "task",
        worker: "agent",
        changes: paths,
        message: parsed.message ?? spec.task,
        trailers: { "Bulkhead-Session": session.id },
        ...(abortSignal && { abortSignal }),
        ...(options.report
          ? { usage: { inputTokens: options.report.usage.inputTokens, outputTokens: options.report.usage.outputTokens } }
          : {}),
      });
      if (result.status !== "committed")
        throw new HarvestError(
          `the lead did not commit the agent's changes in ${repoName} (${result.reason}); see bulkhead lead status ${source}`,
          {
            data: { session: session.id, repo: repoName, reason: result.reason },
          },
        );
      commits.push({ repo: repoName, branch, sha: result.sha, files: result.files, gates: result.gates });
    } finally {
      await lead.close();
    }
  }

  progress("recording the change in the source repositories");
  const fetched = await session.fetchCode({ strict: true, changes });

  // The handover is built from the same change set: it reads no repository.
  const built = await buildHandover({
    spec,
    changes,
    commits: Object.fromEntries(commits.map((commit) => [commit.repo, commit.sha])),
    ...(options.report ? { report: options.report } : {}),
    ...(parsed.toolResultTokens ? { toolResultTokens: parsed.toolResultTokens } : {}),
    guard: { proposals: async () => (await guard.proposals()).filter((proposal) => proposal.author === proposer) },
    gates: commits.flatMap((commit) =>
      commit.gates.map((gate) => ({
        name: `${commit.repo}: ${gate.name}`,
        result: gate.ok ? ("passed" as const) : ("failed" as const),
        evidence: gate.output || "ok",
      })),
    ),
    summary: parsed.summary ?? [`Ran the agent for "${spec.task}"`],
    nextTaskDependencies: parsed.next ?? [],
    status: parsed.status ?? (held.length > 0 ? "partial" : "complete"),
    notes: parsed.notes ?? [],
    ...(parsed.memoryGiven ? { memoryGiven: parsed.memoryGiven } : {}),
  });
  // A held path of a repo that also got a commit is not in that commit: say so.
  const heldPaths = new Set([...held, ...refused].map((entry) => `${entry.repo}\0${entry.file}`));
  const handover = handoverSchema.parse({
    ...built,
    filesChanged: built.filesChanged.map((file) =>
      heldPaths.has(`${file.repo}\0${file.path}`) ? { ...file, state: "uncommitted" as const } : file,
    ),
  });
  return { changes, commits, held, refused, fetched, handover };
}

import { randomBytes } from "node:crypto";
import {
  createByteEstimateCounter,
  InvalidArgumentError,
  type MultiRepoGuard,
  type TaskSpec,
  type TokenCounter,
  type UsageReport,
} from "@bulkhead/core";
import { repoChangeSets, type ChangeSetInput } from "./change-set-input.js";
import { trustedChangesSince } from "./git.js";
import { handoverSchema, TRIMMABLE_SECTIONS, type GateOutcome, type HandoverDocument } from "./handover-document.js";
import { HandoverTooLargeError } from "./handover-errors.js";
import { renderHandover } from "./render-handover.js";

export interface BuildHandoverOptions {
  spec: TaskSpec;
  /**
   * What the task changed: the session's change set (`session.changes()`), one repo's part, or a
   * list of parts. The files changed come from it alone: nothing is read from the agent's clone,
   * and no git runs. Give `changes`, or `repos` with `base`.
   */
  changes?: ChangeSetInput;
  /**
   * Repo name → the lead's commit of that repo's changes: its changed paths are listed as
   * `committed`; a repo without one lists them as `uncommitted` (not on the branch yet).
   */
  commits?: Record<string, string>;
  /**
   * TRUSTED repositories only (the user's own, where a person works): repo name → directory, read
   * with git (hooks, fsmonitor and pager off). Never an agent's clone: its configuration would run
   * on the host; pass the session's `changes` instead.
   */
  repos?: Record<string, string>;
  /** With `repos`: repo name → the commit the task started from. */
  base?: Record<string, string>;
  /** The tracker's report. */
  report?: UsageReport;
  /**
   * Tokens of tool results that the model gateway charged to the tool-call budget (the sum of its
   * audit records' `toolResultTokens`, counted locally). The upstream reports them inside the
   * prompt tokens, so the report books them as context read: the handover shows them on the
   * tool-call line and takes them out of the context read, so the kinds still add up to the total.
   * @default 0
   */
  toolResultTokens?: number;
  /** Held proposals come from here. */
  guard?: Pick<MultiRepoGuard, "proposals">;
  gates?: readonly GateOutcome[];
  /** What was done, in the agent's words: the only narrative in the document. */
  summary: readonly string[];
  status?: HandoverDocument["status"];
  nextTaskDependencies?: readonly string[];
  notes?: readonly string[];
  /** Decisions taken during the task, one line each ("what — why"); proposed to project memory later. */
  decisions?: readonly string[];
  /** Ids of the project-memory entries the agent was given (`selection.selected` of `@bulkhead/memory`). */
  memoryGiven?: readonly string[];
  previousHandoverId?: string;
  /** Bound on the rendered document's tokens (summaries, not transcripts). */
  maxTokens?: number;
  /** Over the bound: shorten lists with "(+N more)", or throw. @default "trim" */
  onOverflow?: "trim" | "throw";
  /** Counts the rendered document. @default the byte estimate */
  counter?: TokenCounter;
  /** Gate evidence longer than this is cut, with "…". @default 500 */
  maxEvidenceChars?: number;
  /** The clock, for tests. */
  now?: () => Date;
}

/**
 * Builds a handover from real data: the files changed in each repo (added, modified, deleted)
 * from the session's change set, as data, never by running anything in the agent's clone (or,
 * for trusted repositories, from git since a base commit); the token consumption from the tracker's
 * report, the cross-repo impact from the repos touched and the guard's proposals. Only "what was
 * done" comes from the agent. With `maxTokens`, lists are trimmed with a recorded "(+N more)"
 * until it fits, or it throws when asked to.
 *
 * @example
 * const changes = await session.changes();
 * const document = await buildHandover({ spec, changes, commits: { "backend-api": result.sha }, report: tracker.report(), guard, summary: ["Added the middleware"] });
 * await writeFile("handover.md", renderHandover(document));
 */
export async function buildHandover(options: BuildHandoverOptions): Promise<HandoverDocument> {
  const {
    spec,
    changes,
    commits = {},
    repos,
    base = {},
    report,
    guard,
    gates = [],
    summary,
    status = "complete",
    nextTaskDependencies = [],
    notes = [],
    previousHandoverId,
  } = options;
  const { maxTokens, onOverflow = "trim", counter = createByteEstimateCounter(), maxEvidenceChars = 500, now = () => new Date() } = options;
  if (!spec?.task) throw new InvalidArgumentError("options.spec", "expected a TaskSpec");
  if (!Array.isArray(summary)) throw new InvalidArgumentError("options.summary", "expected a list of what was done");
  const { toolResultTokens = 0 } = options;
  if (!Number.isSafeInteger(toolResultTokens) || toolResultTokens < 0)
    throw new InvalidArgumentError("options.toolResultTokens", `expected a whole number of tokens, 0 or more, got ${toolResultTokens}`);
  if (maxTokens !== undefined && !(maxTokens > 0))
    throw new InvalidArgumentError("options.maxTokens", `expected a positive number, got ${maxTokens}`);

  if ((changes === undefined) === (repos === undefined))
    throw new InvalidArgumentError(
      "options.changes",
      "pass the session's changes (session.changes()), or repos with base for trusted repositories; not both",
    );

  const filesChanged: HandoverDocument["filesChanged"] = [];
  if (changes !== undefined) {
    for (const repo of repoChangeSets(changes, "options.changes")) {
      const state = commits[repo.repo] === undefined ? "uncommitted" : "committed";
      for (const path of repo.paths) filesChanged.push({ repo: repo.repo, path: path.path, change: path.kind, state });
    }
  }
  for (const [repo, dir] of Object.entries(repos ?? {})) {
    const from = base[repo];
    if (from === undefined)
      throw new InvalidArgumentError("options.base", `no base commit for repo "${repo}": pass base: { "${repo}": "<sha>" }`);
    for (const change of await trustedChangesSince(dir, from)) filesChanged.push({ repo, ...change });
  }
  const reposTouched = [...new Set(filesChanged.map((file) => file.repo))];
  const held = guard
    ? (await guard.proposals()).map((proposal) => ({ id: proposal.id, repo: proposal.repo, file: proposal.file, status: proposal.status }))
    : [];

  const document: HandoverDocument = handoverSchema.parse({
    id: `handover-${now().toISOString().replace(/[-:.]/g, "")}-${randomBytes(3).toString("hex")}`,
    task: { title: spec.task, ...(spec.id === undefined ? {} : { id: spec.id }) },
    status,
    done: [...summary],
    filesChanged,
    ...(report === undefined ? {} : { tokens: withToolResults(report, toolResultTokens) }),
    crossRepoImpact: { reposTouched, held },
    nextTaskDependencies: [...nextTaskDependencies],
    gates: gates.map((gate) => ({
      ...gate,
      evidence: gate.evidence.length > maxEvidenceChars ? `${gate.evidence.slice(0, maxEvidenceChars - 1)}…` : gate.evidence,
    })),
    notes: [...notes],
    ...(options.decisions === undefined ? {} : { decisions: [...options.decisions] }),
    ...(options.memoryGiven === undefined ? {} : { memoryGiven: [...options.memoryGiven] }),
    createdAt: now().toISOString(),
    ...(previousHandoverId === undefined ? {} : { previousHandoverId }),
    trimmed: [],
  });
  if (maxTokens === undefined) return document;
  return fit(document, maxTokens, onOverflow, counter);
}

/** The report with the gateway's tool-result tokens moved from the context read to the tool-call line. */
function withToolResults(report: UsageReport, tokens: number): UsageReport {
  const moved = Math.min(tokens, report.contextReadTokens);
  if (moved === 0) return report;
  return { ...report, contextReadTokens: report.contextReadTokens - moved, toolCallTokens: report.toolCallTokens + moved };
}

const TRIM_ORDER = ["filesChanged", "notes", "gates", "done", "nextTaskDependencies"] as const;

/** Shortens the longest list, one entry at a time, until the rendered document fits. */
async function fit(
  document: HandoverDocument,
  maxTokens: number,
  onOverflow: "trim" | "throw",
  counter: TokenCounter,
): Promise<HandoverDocument> {
  const size = async (candidate: HandoverDocument) => counter.count(renderHandover(candidate));
  let tokens = await size(document);
  if (tokens <= maxTokens) return document;
  if (onOverflow === "throw") throw new HandoverTooLargeError(tokens, maxTokens);
  const working = structuredClone(document);
  const kept = Object.fromEntries(TRIM_ORDER.map((section) => [section, working[section].length])) as Record<
    (typeof TRIM_ORDER)[number],
    number
  >;
  const original = structuredClone(document);
  while (tokens > maxTokens) {
    const section = [...TRIM_ORDER].sort((left, right) => kept[right] - kept[left])[0]!;
    if (kept[section] === 0) throw new HandoverTooLargeError(tokens, maxTokens);
    kept[section]--;
    for (const name of TRIM_ORDER) (working[name] as unknown[]) = (original[name] as unknown[]).slice(0, kept[name]);
    working.trimmed = TRIMMABLE_SECTIONS.filter((name) => kept[name] < original[name].length).map((name) => ({
      section: name,
      omitted: original[name].length - kept[name],
    }));
    tokens = await size(working);
  }
  return working;
}

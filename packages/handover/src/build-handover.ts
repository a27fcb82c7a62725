import { randomBytes } from "node:crypto";
import {
  createByteEstimateCounter,
  InvalidArgumentError,
  type MultiRepoGuard,
  type TaskSpec,
  type TokenCounter,
  type UsageReport,
} from "@bulkhead/core";
import { changesSince } from "./git.js";
import { handoverSchema, TRIMMABLE_SECTIONS, type GateOutcome, type HandoverDocument } from "./handover-document.js";
import { HandoverTooLargeError } from "./handover-errors.js";
import { renderHandover } from "./render-handover.js";

export interface BuildHandoverOptions {
  spec: TaskSpec;
  /** Repo name → directory of its git repository. */
  repos: Record<string, string>;
  /** Repo name → the commit the task started from. */
  base: Record<string, string>;
  /** The tracker's report. */
  report?: UsageReport;
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
 * Builds a handover from real data: the files changed in each repo since its base commit
 * (committed and uncommitted, deletions too) from git, the token consumption from the tracker's
 * report, the cross-repo impact from the repos touched and the guard's proposals. Only "what was
 * done" comes from the agent. With `maxTokens`, lists are trimmed with a recorded "(+N more)"
 * until it fits, or it throws when asked to.
 *
 * @example
 * const document = await buildHandover({ spec, repos, base, report: tracker.report(), guard, summary: ["Added the middleware"] });
 * await writeFile("handover.md", renderHandover(document));
 */
export async function buildHandover(options: BuildHandoverOptions): Promise<HandoverDocument> {
  const {
    spec,
    repos,
    base,
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
  if (maxTokens !== undefined && !(maxTokens > 0))
    throw new InvalidArgumentError("options.maxTokens", `expected a positive number, got ${maxTokens}`);

  const filesChanged: HandoverDocument["filesChanged"] = [];
  for (const [repo, dir] of Object.entries(repos)) {
    const from = base[repo];
    if (from === undefined)
      throw new InvalidArgumentError("options.base", `no base commit for repo "${repo}": pass base: { "${repo}": "<sha>" }`);
    for (const change of await changesSince(dir, from)) filesChanged.push({ repo, ...change });
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
    ...(report === undefined ? {} : { tokens: report }),
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

import { formatUsd, type Usage, type UsageBreakdown } from "@bulkhead/core";
import type { HandoverDocument } from "./handover-document.js";

/** Makes any text one Markdown-safe line; `parseHandover` undoes it exactly. */
export function escapeLine(text: string): string {
  const escaped = text
    .replaceAll("\\", "\\\\")
    .replaceAll("\r", "\\r")
    .replaceAll("\n", "\\n")
    .replaceAll("|", "\\|")
    // Unicode line breaks end a line for some readers and for regular expressions: spell them out.
    .replace(/[\u0085\u2028\u2029]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`);
  // Lines starting with "_" are ours (markers such as "_None._"), so an item never starts with one.
  return escaped.startsWith("_") ? `\\${escaped}` : escaped;
}

export const NONE = "_None._";
export const moreMarker = (count: number) => `_(+${count} more)_`;
const number = (value: number) => value.toLocaleString("en-US");

const USAGE_COLUMNS = [
  "input",
  "uncached",
  "cache read",
  "cache write 5m",
  "cache write 1h",
  "output",
  "reasoning",
  "total",
  "usd",
] as const;

function usageRow(label: string, usage: Usage, total: number, usd: number | undefined): string {
  const cells = [
    usage.inputTokens,
    usage.uncachedInputTokens,
    usage.cacheReadTokens,
    usage.cacheWrite5mTokens,
    usage.cacheWrite1hTokens,
    usage.outputTokens,
    usage.reasoningTokens,
    total,
  ].map(number);
  return `| ${label} | ${cells.join(" | ")} | ${usd === undefined ? "-" : formatUsd(usd)} |`;
}

function bullets(items: readonly string[], omitted: number | undefined): string[] {
  if (items.length === 0 && !omitted) return [NONE];
  return [...items.map((item) => `- ${escapeLine(item)}`), ...(omitted ? [`- ${moreMarker(omitted)}`] : [])];
}

/**
 * Renders a handover as Markdown in the shape of seed 000 (`# Handover: …`, `## What was done`,
 * `## Token consumption`, `## Cross-repo impact`, `## Next task dependencies`, …). Every field
 * is in the text, so {@link parseHandover} reads it back exactly.
 *
 * @example
 * await writeFile("handover.md", renderHandover(document));
 */
export function renderHandover(document: HandoverDocument): string {
  const omitted = (section: HandoverDocument["trimmed"][number]["section"]) =>
    document.trimmed.find((entry) => entry.section === section)?.omitted;
  const out: string[] = [`# Handover: ${escapeLine(document.task.title)}`, ""];
  out.push(`- Handover: ${document.id}`);
  if (document.task.id !== undefined) out.push(`- Task: ${document.task.id}`);
  out.push(`- Status: ${document.status}`, `- Created: ${document.createdAt}`);
  if (document.previousHandoverId !== undefined) out.push(`- Previous handover: ${document.previousHandoverId}`);
  if (document.consumed) out.push(`- Consumed: ${document.consumed.at} by ${escapeLine(document.consumed.by)}`);

  out.push("", "## What was done", ...bullets(document.done, omitted("done")));

  out.push("", "## Files changed");
  const repos = [...new Set(document.filesChanged.map((file) => file.repo))];
  if (repos.length === 0 && !omitted("filesChanged")) out.push(NONE);
  for (const repo of repos) {
    out.push(`### ${repo}`);
    for (const file of document.filesChanged.filter((entry) => entry.repo === repo)) {
      out.push(`- ${file.change}${file.state === "uncommitted" ? " (uncommitted)" : ""}: ${escapeLine(file.path)}`);
    }
  }
  if (omitted("filesChanged")) out.push(`- ${moreMarker(omitted("filesChanged")!)}`);

  out.push("", "## Token consumption");
  const tokens = document.tokens;
  if (!tokens) out.push(NONE);
  else {
    out.push(
      `- Context read: ${number(tokens.contextReadTokens)} tokens`,
      `- Code generation: ${number(tokens.generationTokens)} tokens`,
      `- Tool calls: ${number(tokens.toolCallTokens)} tokens`,
      `- Total: ${number(tokens.totalTokens)} tokens`,
    );
    if (tokens.usd !== undefined) out.push(`- Cost: ${formatUsd(tokens.usd)}`);
    if (tokens.taskId !== undefined) out.push(`- Tracked task: ${escapeLine(tokens.taskId)}`);
    out.push("", `| usage | ${USAGE_COLUMNS.join(" | ")} |`, `|---|${USAGE_COLUMNS.map(() => "---:").join("|")}|`);
    out.push(usageRow("all", tokens.usage, tokens.usage.inputTokens + tokens.usage.outputTokens, undefined));
    const breakdown = (prefix: string, entries: Record<string, UsageBreakdown>) => {
      for (const [name, entry] of Object.entries(entries))
        out.push(usageRow(`${prefix} ${escapeLine(name)}`, entry.usage, entry.totalTokens, entry.usd));
    };
    breakdown("repo", tokens.byRepo);
    breakdown("operation", tokens.byOperation);
  }

  out.push("", "## Cross-repo impact");
  const { reposTouched, held } = document.crossRepoImpact;
  if (held.length === 0 && reposTouched.length === 0) out.push(NONE);
  else if (held.length === 0 && reposTouched.length === 1) out.push(`- None. All changes in \`${reposTouched[0]}\` repo.`);
  else {
    out.push(`- Repos touched: ${reposTouched.length === 0 ? "none" : reposTouched.map((repo) => `\`${repo}\``).join(", ")}`);
    for (const proposal of held)
      out.push(`- Held for approval: ${proposal.id} ${proposal.repo} ${escapeLine(proposal.file)} (${proposal.status})`);
  }

  out.push("", "## Next task dependencies", ...bullets(document.nextTaskDependencies, omitted("nextTaskDependencies")));

  out.push("", "## Gates");
  if (document.gates.length === 0 && !omitted("gates")) out.push(NONE);
  for (const gate of document.gates) {
    out.push(
      `- ${escapeLine(gate.name).replaceAll(":", "\\:")}: ${gate.result}${gate.evidence === "" ? "" : ` — ${escapeLine(gate.evidence)}`}`,
    );
  }
  if (omitted("gates")) out.push(`- ${moreMarker(omitted("gates")!)}`);

  out.push("", "## Notes", ...bullets(document.notes, omitted("notes")));
  // Optional sections, written only when present, so older documents render as they did.
  if (document.decisions !== undefined) out.push("", "## Decisions", ...bullets(document.decisions, undefined));
  if (document.memoryGiven !== undefined) out.push("", "## Memory given", ...bullets(document.memoryGiven, undefined));
  out.push("");
  return out.join("\n");
}

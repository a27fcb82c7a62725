import type { MemoryApplies, MemoryEntry } from "./memory-entry.js";
import type { MemorySpecificity, SelectedMemoryEntry } from "./select-memory.js";

/** The section's fixed opening: its tokens are part of the share. */
export const MEMORY_SECTION_HEADER = [
  "## Project memory",
  "",
  "Reviewed decisions, learnings and conventions that apply to this task, most specific first.",
  "Follow them; if the task needs otherwise, say so in the handover's decisions.",
  "",
  "",
].join("\n");

/** `workspace`, or `api, web: src/routes, src/auth`. */
export function describeApplies(applies: MemoryApplies): string {
  if (applies === "workspace") return "workspace";
  return applies.map((target) => (target.paths.length === 0 ? target.repo : `${target.repo}: ${target.paths.join(", ")}`)).join("; ");
}

/**
 * One entry as the agent reads it: a bullet with its kind, title, reason and where it applies,
 * then its body indented, so no line of an entry can pass for a heading of the prompt.
 */
export function renderMemoryBlock(entry: MemoryEntry, specificity: MemorySpecificity): string {
  const kind = entry.kind === "learning" && entry.learning ? `learning, ${entry.learning}` : entry.kind;
  const why = entry.why === undefined ? "" : ` Why: ${entry.why}`;
  const lines = [
    `- [${kind}] ${entry.title}${why} (${specificity === "workspace" ? "workspace" : describeApplies(entry.applies)}; ${entry.id})`,
  ];
  if (entry.body !== "") for (const line of entry.body.split("\n")) lines.push(line.trim() === "" ? "" : `  ${line}`);
  return `${lines.join("\n")}\n`;
}

/**
 * The task prompt's memory section for a selection: the header and each selected entry, most
 * specific first; the empty string when nothing was selected. Its tokens are `selection.tokens`.
 *
 * @example
 * const prompt = [taskPrompt, renderMemorySection(await selectMemory({ entries, spec, scope, counter }))].join("\n");
 */
export function renderMemorySection(selection: { readonly selected: readonly SelectedMemoryEntry[] }): string {
  if (selection.selected.length === 0) return "";
  return MEMORY_SECTION_HEADER + selection.selected.map((item) => renderMemoryBlock(item.entry, item.specificity)).join("");
}

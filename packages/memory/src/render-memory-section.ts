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
  // A loop, not map/join: a selection renders hundreds of blocks.
  let text = "";
  for (let index = 0; index < applies.length; index++) {
    const target = applies[index]!;
    if (index > 0) text += "; ";
    text += target.paths.length === 0 ? target.repo : `${target.repo}: ${target.paths.join(", ")}`;
  }
  return text;
}

/**
 * One entry as the agent reads it: a bullet with its kind, title, reason and where it applies,
 * then its body indented, so no line of an entry can pass for a heading of the prompt.
 */
export function renderMemoryBlock(entry: MemoryEntry, specificity: MemorySpecificity): string {
  const kind = entry.kind === "learning" && entry.learning ? `learning, ${entry.learning}` : entry.kind;
  const why = entry.why === undefined ? "" : ` Why: ${entry.why}`;
  const where = specificity === "workspace" ? "workspace" : describeApplies(entry.applies);
  let text = `- [${kind}] ${entry.title}${why} (${where}; ${entry.id})\n`;
  // Each body line indented, a blank one left empty: one scan, no split and join per block.
  const body = entry.body;
  for (let start = 0; body !== "" && start <= body.length;) {
    let end = body.indexOf("\n", start);
    if (end === -1) end = body.length;
    const line = body.slice(start, end);
    text += line.trim() === "" ? "\n" : `  ${line}\n`;
    start = end + 1;
  }
  return text;
}

/**
 * The task prompt's memory section for a selection: the header and each selected entry, most
 * specific first; the empty string when nothing was selected. Its tokens are `selection.tokens`.
 *
 * @example
 * const prompt = [taskPrompt, renderMemorySection(await selectMemory({ entries, spec, scope, counter }))].join("\n");
 */
export function renderMemorySection(selection: { readonly selected: readonly SelectedMemoryEntry[] }): string {
  return memorySectionText(selection.selected);
}

/**
 * @internal The section's text: the header, then each entry's block, where `rendered[index]`
 * stands for a block already rendered (selectMemory counts the section from the blocks its
 * fitting loop rendered). Empty for no entries.
 */
export function memorySectionText(selected: readonly SelectedMemoryEntry[], rendered: readonly (string | undefined)[] = []): string {
  if (selected.length === 0) return "";
  let section = MEMORY_SECTION_HEADER;
  for (let index = 0; index < selected.length; index++)
    section += rendered[index] ?? renderMemoryBlock(selected[index]!.entry, selected[index]!.specificity);
  return section;
}

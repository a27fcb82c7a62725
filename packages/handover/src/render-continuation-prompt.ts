import type { TaskSpec } from "@bulkhead/core";
import type { CompletionAssessment } from "./assess-completion.js";

/** A place in the code the continuation agent should follow, as `file:line`. */
export interface PatternReference {
  repo?: string;
  file: string;
  line: number;
  /** What to follow there, e.g. "the update_block_metadata command pattern". */
  what: string;
}

const describe = (item: { repo: string; path: string; change: string }) => `${item.change} \`${item.repo}/${item.path}\``;

/**
 * The prompt for a continuation agent (seed 003): what the previous agent completed (✅), the
 * remaining scope only, the same ownership rules, pattern references as `file:line` instead of
 * repeated explanations, and the completed files it must not modify.
 *
 * @example
 * const prompt = renderContinuationPrompt({ assessment, task: spec, references: [{ file: "src/routes/user.ts", line: 12, what: "route registration" }] });
 */
export function renderContinuationPrompt({
  assessment,
  task,
  references = [],
}: {
  assessment: CompletionAssessment;
  task: TaskSpec;
  references?: readonly PatternReference[];
}): string {
  const out: string[] = [`## Task: Complete the remaining work of "${task.task}"${task.id ? ` (${task.id})` : ""}`, ""];
  out.push("The previous agent completed:");
  if (assessment.done.length === 0) out.push("- (nothing verifiable yet)");
  assessment.done.forEach((item, index) => out.push(`${index + 1}. ✅ ${describe(item)}`));
  out.push("", "You need to complete the remaining work:");
  assessment.missing.forEach((item, index) => out.push(`### ${index + 1}. ${describe(item)}`, `Currently: ${item.reason}.`, ""));
  if (assessment.missing.length === 0) out.push("- Nothing is missing: verify, run the checks, and report.", "");
  if (references.length > 0) {
    out.push("### Patterns to follow (read these instead of exploring)");
    for (const reference of references)
      out.push(`- ${reference.what}: \`${reference.repo ? `${reference.repo}/` : ""}${reference.file}:${reference.line}\``);
    out.push("");
  }
  const { primaryRepo, allowedCrossRepoReads, allowedCrossRepoWrites } = task.ownership;
  out.push("### Ownership (unchanged)");
  out.push(`- Primary repo: \`${primaryRepo}\`; write only inside the task's scope there.`);
  out.push(
    `- Read across repos: ${allowedCrossRepoReads.length === 0 ? "none" : allowedCrossRepoReads.map((repo) => `\`${repo}\``).join(", ")}.`,
  );
  out.push(
    `- Write across repos: ${allowedCrossRepoWrites.length === 0 ? "none; any other change is held for approval" : allowedCrossRepoWrites.map((repo) => `\`${repo}\``).join(", ")}.`,
  );
  out.push("- Do not commit: the lead commits once the work is verified.");
  if (assessment.unexpected.length > 0) {
    out.push("", "### Also changed by the previous agent (review, do not extend)");
    for (const item of assessment.unexpected) out.push(`- ${describe(item)}`);
  }
  out.push("", "### IMPORTANT: DO NOT modify files already completed above.");
  for (const item of assessment.done) out.push(`- \`${item.repo}/${item.path}\``);
  return `${out.join("\n")}\n`;
}

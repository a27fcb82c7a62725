import { InvalidArgumentError, type ResolvedScope, type TaskSpec } from "@bulkhead/core";

/**
 * The largest task prompt rendered, in bytes: agents take the prompt as one command-line
 * argument, and Linux refuses a single argument over 128 KiB.
 */
export const MAX_TASK_PROMPT_BYTES = 120_000;

export interface RenderTaskPromptOptions {
  spec: TaskSpec;
  /** The resolved scope (`resolveScope`): its files and their token counts. */
  scope: Pick<ResolvedScope, "files" | "totals" | "counter" | "estimated"> & Partial<Pick<ResolvedScope, "toCreate">>;
  /** The limits to state. @default spec.budgets */
  budgets?: TaskSpec["budgets"];
  /** When continuing: the continuation prompt (`renderContinuationPrompt`) or the earlier handover's text. */
  continuation?: string;
  /** Where the repos are, side by side, in the agent's box. @default "/workspace" */
  root?: string;
  /** Files listed one by one; the rest are counted. @default 200 */
  maxListedFiles?: number;
  /**
   * The project-memory section for this task (`renderMemorySection` of `@bulkhead/memory`'s
   * selection), placed after the rules as it is; its tokens belong in the context-read check. Empty or
   * absent: no section. See docs/memory.md.
   */
  memory?: string;
}

const code = (text: string) => `\`${text.replace(/`/g, "'")}\``;
const list = (repos: readonly string[], none: string) => (repos.length === 0 ? none : repos.map(code).join(", "));

/**
 * The task prompt an agent is dispatched with, rendered from the task spec and its resolved
 * scope: the task, the scoped files with their token counts, the primary repo and the cross-repo
 * rules, that changes outside them are held for approval, the budgets (enforced by the gateway),
 * that the lead commits and the agent does not, and the continuation when there is one.
 * Deterministic: the same spec and scope give the same text.
 *
 * @example
 * const prompt = renderTaskPrompt({ spec, scope: await resolveScope(spec, { repos, counter }) });
 */
export function renderTaskPrompt({
  spec,
  scope,
  budgets = spec?.budgets,
  continuation,
  root = "/workspace",
  maxListedFiles = 200,
  memory,
}: RenderTaskPromptOptions): string {
  if (typeof spec?.task !== "string" || spec.task.trim() === "")
    throw new InvalidArgumentError("spec.task", "a task prompt needs the spec's task");
  if (!Array.isArray(scope?.files)) throw new InvalidArgumentError("scope", "expected a resolved scope (resolveScope)");
  if (!Number.isInteger(maxListedFiles) || maxListedFiles < 0)
    throw new InvalidArgumentError("maxListedFiles", `expected a non-negative integer, got ${String(maxListedFiles)}`);
  if (memory !== undefined && typeof memory !== "string")
    throw new InvalidArgumentError("memory", "expected the rendered memory section (renderMemorySection), a string");
  const { primaryRepo, allowedCrossRepoReads, allowedCrossRepoWrites } = spec.ownership;
  const repos = [...new Set([primaryRepo, ...spec.contextScope.repos.map((repo) => repo.name)])];
  const out: string[] = [`# Task${spec.id ? ` ${spec.id}` : ""}: ${spec.task.trim()}`, ""];

  out.push("## Where you work", "");
  out.push(`- The repos are checked out side by side under ${code(`${root}/`)}: ${repos.map((repo) => code(repo)).join(", ")}.`);
  out.push(`- Your primary repo is ${code(primaryRepo)} (${code(`${root}/${primaryRepo}`)}): your changes belong there.`, "");

  const counted = `${scope.totals.tokens} tokens${scope.estimated ? " (estimated)" : ""}, counted with ${scope.counter}`;
  out.push(`## Files in scope (${scope.totals.files} files, ${counted})`, "");
  for (const file of scope.files.slice(0, maxListedFiles)) out.push(`- ${code(`${file.repo}/${file.path}`)}: ${file.tokens} tokens`);
  if (scope.files.length > maxListedFiles) {
    const rest = scope.files.slice(maxListedFiles);
    out.push(`- and ${rest.length} more files (${rest.reduce((sum, file) => sum + file.tokens, 0)} tokens)`);
  }
  if (scope.files.length === 0) out.push("- (no files: the task starts from an empty scope)");
  // Files the scope names that do not exist yet: the task creates them (not counted in the limits).
  const toCreate = scope.toCreate ?? [];
  if (toCreate.length > 0) out.push("", `## Files to create (${toCreate.length}; they do not exist yet)`, "");
  for (const file of toCreate.slice(0, maxListedFiles)) out.push(`- ${code(`${file.repo}/${file.path}`)}: create it`);
  out.push("", "Read these first; read other files only when the task needs them.", "");

  out.push("## Rules", "");
  out.push(`- Write inside the scope of ${code(primaryRepo)}.`);
  out.push(`- You may read across repos in: ${list(allowedCrossRepoReads, "none")}.`);
  out.push(`- You may write across repos in: ${list(allowedCrossRepoWrites, "none")}.`);
  out.push(
    "- Any change outside these is held for a person's approval, not applied: make it only when the task needs it, and say why in your final message.",
  );
  out.push("- Do not commit, push, or create branches: the lead commits your changes once they pass its checks.", "");
  // As rendered and counted (only its trailing newlines become the one blank line between sections).
  if (memory !== undefined && memory.trim() !== "") out.push(memory.replace(/\n+$/, ""), "");

  const limits = [
    budgets?.contextRead !== undefined ? `context read ${budgets.contextRead} tokens` : undefined,
    budgets?.generation !== undefined ? `generation ${budgets.generation} tokens` : undefined,
    budgets?.toolCalls !== undefined ? `tool calls ${budgets.toolCalls} tokens` : undefined,
    budgets?.sessionTotal !== undefined ? `session total ${budgets.sessionTotal} tokens` : undefined,
    budgets?.usd !== undefined ? `$${budgets.usd}` : undefined,
  ].filter((limit): limit is string => limit !== undefined);
  out.push("## Budgets", "");
  out.push(limits.length === 0 ? "- No limits are set for this task." : `- ${limits.join("; ")}.`);
  out.push(
    "- They are enforced on every model call: when one is spent, output is cut, tools are turned off, or calls are refused. Work in small steps, and stop when the task is done.",
    "",
  );

  if (continuation !== undefined && continuation.trim() !== "") {
    out.push("## Continuing earlier work", "", continuation.trim(), "");
  }
  out.push("## When you finish", "", "End with a short summary: what you changed, and what is left, if anything.");
  const prompt = `${out.join("\n")}\n`;
  const bytes = Buffer.byteLength(prompt);
  if (bytes > MAX_TASK_PROMPT_BYTES)
    throw new InvalidArgumentError(
      "scope",
      `the task prompt would be ${bytes} bytes, over ${MAX_TASK_PROMPT_BYTES}: list fewer files (maxListedFiles), shorten the continuation or give less memory`,
    );
  return prompt;
}

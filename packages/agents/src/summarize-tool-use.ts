import { asRecord, asString, oneLine } from "./line-parser.js";

// The input key that says most about a call, per tool (Claude Code's names and Codex's).
const KEY: Record<string, string> = {
  Write: "file_path",
  Edit: "file_path",
  MultiEdit: "file_path",
  Read: "file_path",
  NotebookEdit: "notebook_path",
  Bash: "command",
  Glob: "pattern",
  Grep: "pattern",
  WebFetch: "url",
  WebSearch: "query",
  Task: "description",
  exec_command: "cmd",
  shell: "command",
};

/**
 * One line for people about a tool call: the tool and its telling argument, with paths under
 * `/workspace/` shortened (`Write api/src/a.ts`, `Bash npm test`).
 *
 * @example
 * summarizeToolUse("Write", { file_path: "/workspace/api/src/a.ts" }); // "Write api/src/a.ts"
 */
export function summarizeToolUse(name: string, input: unknown): string {
  const fields = asRecord(input);
  const key = KEY[name];
  let detail = key === undefined ? undefined : fields[key];
  if (Array.isArray(detail)) detail = detail.filter((part) => typeof part === "string").join(" ");
  const text = asString(detail) ?? Object.values(fields).find((value): value is string => typeof value === "string") ?? "";
  const shown = text.replace(/(^|\s)\/workspace\//g, "$1");
  return oneLine(shown ? `${name} ${shown}` : name, 120);
}

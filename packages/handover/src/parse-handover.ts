import { BulkheadError, emptyUsage, formatZodIssues, type Usage, type UsageBreakdown, type UsageReport } from "@bulkhead/core";
import { handoverSchema, TRIMMABLE_SECTIONS, type ChangedFile, type HandoverDocument } from "./handover-document.js";
import { InvalidHandoverError } from "./handover-errors.js";
import { NONE } from "./render-handover.js";

/** Undoes `escapeLine`: `\\n`, `\\r`, `\\|`, `\\:`, a leading `\\_` and `\\\\`. */
export function unescapeLine(text: string): string {
  let out = "";
  for (let index = 0; index < text.length; index++) {
    const char = text[index]!;
    if (char !== "\\" || index === text.length - 1) {
      out += char;
      continue;
    }
    const next = text[++index]!;
    const code = next === "u" ? /^[0-9a-f]{4}/.exec(text.slice(index + 1))?.[0] : undefined;
    if (code) {
      out += String.fromCharCode(Number.parseInt(code, 16));
      index += 4;
    } else out += next === "n" ? "\n" : next === "r" ? "\r" : next;
  }
  return out;
}

/** Splits at unescaped occurrences of a one-character separator. */
function splitUnescaped(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = "";
  for (let index = 0; index < text.length; index++) {
    const char = text[index]!;
    if (char === "\\" && index + 1 < text.length) {
      current += char + text[++index]!;
      continue;
    }
    if (char === separator) {
      parts.push(current);
      current = "";
      continue;
    }
    current += char;
  }
  parts.push(current);
  return parts;
}

const MORE = /^- _\(\+(\d+) more\)_$/;
const TRIMMABLE = {
  "What was done": "done",
  "Files changed": "filesChanged",
  "Next task dependencies": "nextTaskDependencies",
  Gates: "gates",
  Notes: "notes",
} as const;

/**
 * Reads a handover back from the Markdown that {@link renderHandover} writes, exactly:
 * `parseHandover(renderHandover(x))` equals `x`. Malformed input of any kind throws
 * {@link InvalidHandoverError} naming the line; it never crashes.
 */
export function parseHandover(
  markdown: string,
  {
    source = "handover.md",
    lenient = false,
  }: {
    source?: string;
    /**
     * Reads a hand-written handover too, such as seed 000's example: a missing section is empty,
     * missing metadata gets defaults (status `complete`, a new id, the current time), a token label
     * may carry a note ("Tool calls (tests)"), and the usage table is optional (the totals stand
     * in). Everything present is still checked.
     */
    lenient?: boolean;
  } = {},
): HandoverDocument {
  if (typeof markdown !== "string") throw new InvalidHandoverError(source, "expected the handover's Markdown text");
  try {
    return parse(markdown, source, lenient);
  } catch (error) {
    if (BulkheadError.isInstance(error)) throw error;
    throw new InvalidHandoverError(source, `could not be read: ${(error as Error).message}`);
  }
}

function parse(markdown: string, source: string, lenient: boolean): HandoverDocument {
  const lines = markdown.replaceAll("\r\n", "\n").split("\n");
  const fail = (problem: string, index?: number): never => {
    throw new InvalidHandoverError(source, problem, index === undefined ? undefined : index + 1);
  };
  const titleIndex = lines.findIndex((line) => line.trim() !== "");
  const title = /^# Handover: (.+)$/.exec(lines[titleIndex] ?? "");
  if (!title) fail('expected the title "# Handover: <task>"', Math.max(titleIndex, 0));

  const sections = new Map<string, { start: number; lines: string[] }>();
  const meta: string[] = [];
  let current: string[] = meta;
  for (let index = titleIndex + 1; index < lines.length; index++) {
    const line = lines[index]!;
    const heading = /^## (.+)$/.exec(line);
    if (heading) {
      if (sections.has(heading[1]!)) fail(`section "${heading[1]}" appears twice`, index);
      current = [];
      sections.set(heading[1]!, { start: index, lines: current });
      continue;
    }
    if (line.trim() !== "") current.push(line);
  }
  const section = (name: string) => sections.get(name)?.lines ?? (lenient ? [] : fail(`missing section "## ${name}"`));
  const trimmed: HandoverDocument["trimmed"] = [];
  const list = (name: string): string[] => {
    const items: string[] = [];
    for (const line of section(name)) {
      if (line === NONE) continue;
      const more = MORE.exec(line);
      const trimmable = (TRIMMABLE as Record<string, (typeof TRIMMABLE_SECTIONS)[number] | undefined>)[name];
      if (more && !trimmable) fail(`"## ${name}" is never trimmed: list every item`, sections.get(name)!.start);
      if (more) trimmed.push({ section: trimmable!, omitted: Number(more[1]) });
      else if (line.startsWith("- ")) items.push(unescapeLine(line.slice(2)));
      else fail(`unexpected line in "## ${name}": ${JSON.stringify(line.slice(0, 60))}`, sections.get(name)!.start);
    }
    return items;
  };

  const document: Record<string, unknown> = { task: { title: unescapeLine(title![1]!) } };
  for (const line of meta) {
    const field =
      /^- (Handover|Task|Status|Created|Previous handover|Consumed): (.+)$/.exec(line) ??
      fail(`unexpected line before the first section: ${JSON.stringify(line.slice(0, 60))}`);
    const [, key, value] = field;
    if (key === "Handover") document.id = value;
    else if (key === "Task") (document.task as Record<string, unknown>).id = value;
    else if (key === "Status") document.status = value;
    else if (key === "Created") document.createdAt = value;
    else if (key === "Previous handover") document.previousHandoverId = value;
    else {
      const consumed = /^(\S+) by (.+)$/.exec(value!) ?? fail(`expected "Consumed: <time> by <who>", got ${JSON.stringify(value)}`);
      document.consumed = { at: consumed[1], by: unescapeLine(consumed[2]!) };
    }
  }

  if (lenient) {
    document.id ??= `handover-${Date.now().toString(36)}`;
    document.status ??= "complete";
    document.createdAt ??= new Date().toISOString();
  }
  document.done = list("What was done");

  const files: ChangedFile[] = [];
  let repo: string | undefined;
  for (const line of section("Files changed")) {
    if (line === NONE) continue;
    const more = MORE.exec(line);
    if (more) {
      trimmed.push({ section: "filesChanged", omitted: Number(more[1]) });
      continue;
    }
    const heading = /^### (.+)$/.exec(line);
    if (heading) {
      repo = heading[1];
      continue;
    }
    const file =
      /^- (added|modified|deleted)( \(uncommitted\))?: (.+)$/.exec(line) ??
      fail(`expected "- <added|modified|deleted>: <path>", got ${JSON.stringify(line.slice(0, 60))}`);
    if (!repo) fail('a changed file comes before its repo\'s "### <repo>" heading');
    files.push({
      repo: repo!,
      path: unescapeLine(file[3]!),
      change: file[1] as ChangedFile["change"],
      state: file[2] ? "uncommitted" : "committed",
    });
  }
  document.filesChanged = files;

  const tokenLines = section("Token consumption");
  document.tokens = lenient && tokenLines.length === 0 ? undefined : parseTokens(tokenLines, fail, lenient);

  const impact = section("Cross-repo impact");
  const crossRepoImpact = { reposTouched: [] as string[], held: [] as unknown[] };
  for (const line of impact) {
    if (line === NONE) continue;
    const single = /^- None\. All changes in `([^`]+)` repo\.$/.exec(line);
    const touched = /^- Repos touched: (.+)$/.exec(line);
    const held = /^- Held for approval: (\S+) (\S+) (.+) \((pending|approved|rejected)\)$/.exec(line);
    if (single) crossRepoImpact.reposTouched = [single[1]!];
    else if (touched)
      crossRepoImpact.reposTouched = touched[1] === "none" ? [] : touched[1]!.split(", ").map((name) => name.replace(/^`|`$/g, ""));
    else if (held) crossRepoImpact.held.push({ id: held[1], repo: held[2], file: unescapeLine(held[3]!), status: held[4] });
    else fail(`unexpected line in "## Cross-repo impact": ${JSON.stringify(line.slice(0, 60))}`);
  }
  document.crossRepoImpact = crossRepoImpact;

  document.nextTaskDependencies = list("Next task dependencies");

  const gates: unknown[] = [];
  for (const line of section("Gates")) {
    if (line === NONE) continue;
    const more = MORE.exec(line);
    if (more) {
      trimmed.push({ section: "gates", omitted: Number(more[1]) });
      continue;
    }
    if (!line.startsWith("- ")) fail(`expected a gate line "- <name>: <result>", got ${JSON.stringify(line.slice(0, 60))}`);
    const [name, ...rest] = splitUnescaped(line.slice(2), ":");
    const outcome =
      /^ (passed|failed|skipped)(?: — (.*))?$/.exec(rest.join(":")) ??
      fail(`expected "<name>: passed|failed|skipped", got ${JSON.stringify(line.slice(0, 60))}`);
    gates.push({ name: unescapeLine(name!), result: outcome[1], evidence: outcome[2] === undefined ? "" : unescapeLine(outcome[2]) });
  }
  document.gates = gates;
  document.notes = list("Notes");
  for (const [name, key] of [
    ["Decisions", "decisions"],
    ["Memory given", "memoryGiven"],
  ] as const) {
    if (sections.has(name)) document[key] = list(name);
  }
  document.trimmed = trimmed.sort((left, right) => TRIMMABLE_SECTIONS.indexOf(left.section) - TRIMMABLE_SECTIONS.indexOf(right.section));

  const result = handoverSchema.safeParse(document);
  if (!result.success) {
    fail(formatZodIssues(result.error, { root: "(document)" }));
  }
  return result.data!;
}

const toNumber = (text: string) => Number(text.replaceAll(",", ""));

function parseTokens(lines: readonly string[], fail: (problem: string) => never, lenient = false): UsageReport | undefined {
  if (lines.length === 1 && lines[0] === NONE) return undefined;
  const value = (label: string) => {
    // Leniently, "- Tool calls (tests): 3,200 tokens" reads as the tool-call line.
    const pattern = new RegExp(`^- ${label}${lenient ? "(?: \\([^)]*\\))?" : ""}: (.*)$`);
    for (const line of lines) {
      const found = pattern.exec(line);
      if (found) return found[1]!;
    }
    return fail(`missing "- ${label}: …" in "## Token consumption"`);
  };
  const tokens = (label: string) => toNumber(/^([\d,]+) tokens$/.exec(value(label))?.[1] ?? fail(`expected "${label}: <n> tokens"`));
  const report: Record<string, unknown> = {
    contextReadTokens: tokens("Context read"),
    generationTokens: tokens("Code generation"),
    toolCallTokens: tokens("Tool calls"),
    totalTokens: tokens("Total"),
    byRepo: {},
    byOperation: {},
  };
  const cost = lines.find((line) => line.startsWith("- Cost: $"));
  if (cost) report.usd = Number(cost.slice("- Cost: $".length));
  const tracked = lines.find((line) => line.startsWith("- Tracked task: "));
  if (tracked) report.taskId = unescapeLine(tracked.slice("- Tracked task: ".length));
  for (const line of lines.filter((candidate) => candidate.startsWith("| ") && !candidate.startsWith("| usage "))) {
    // Cells are written as "| x |": strip exactly that padding, so names keep their own spaces.
    const cells = splitUnescaped(line.slice(1, -1), "|").map((cell) => cell.replace(/^ /, "").replace(/ $/, ""));
    if (cells.length !== 10) fail(`expected 10 cells in a usage row, got ${cells.length}`);
    const [label, ...numbers] = cells as [string, ...string[]];
    const [input, uncached, cacheRead, write5m, write1h, output, reasoning, total] = numbers.slice(0, 8).map(toNumber) as number[];
    const usage: Usage = {
      ...emptyUsage(),
      inputTokens: input!,
      uncachedInputTokens: uncached!,
      cacheReadTokens: cacheRead!,
      cacheWrite5mTokens: write5m!,
      cacheWrite1hTokens: write1h!,
      outputTokens: output!,
      reasoningTokens: reasoning!,
    };
    const usdCell = numbers[8]!;
    const breakdown: UsageBreakdown = { usage, totalTokens: total!, ...(usdCell === "-" ? {} : { usd: Number(usdCell.slice(1)) }) };
    if (label === "all") report.usage = usage;
    else if (label.startsWith("repo ")) (report.byRepo as Record<string, UsageBreakdown>)[unescapeLine(label.slice(5))] = breakdown;
    else if (label.startsWith("operation "))
      (report.byOperation as Record<string, UsageBreakdown>)[unescapeLine(label.slice(10))] = breakdown;
    else fail(`unknown usage row "${label}"`);
  }
  if (!report.usage && lenient) {
    // No usage table: the totals stand in (what was read as input, what was generated as output).
    const input = report.contextReadTokens as number;
    report.usage = { ...emptyUsage(), inputTokens: input, uncachedInputTokens: input, outputTokens: report.generationTokens as number };
  }
  if (!report.usage) fail('missing the "all" row of the usage table');
  return report as UsageReport;
}

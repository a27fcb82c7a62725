import { readFile, realpath } from "node:fs/promises";
import { join, sep } from "node:path";
import { InvalidArgumentError, normalizeRepoPath, PathOutsideRootError, type TokenCounter } from "@bulkhead/core";

/**
 * Seed 003's table of approximate context consumption, in tokens: [low, high].
 * Detailed prompt 3–8k; file read 1–4k per file; file edit 0.5–2k per edit; test or compile
 * output 2–5k per run; quality gate (lint + typecheck) 3–8k per run.
 */
export const CONTEXT_COSTS = {
  prompt: [3000, 8000],
  fileRead: [1000, 4000],
  edit: [500, 2000],
  testRun: [2000, 5000],
  gateRun: [3000, 8000],
} as const satisfies Record<string, readonly [number, number]>;

/** Seed 003's rule of thumb: past 70% of the window, split or plan a continuation. */
export const CONTEXT_RULE = 0.7;

export interface ContextWork {
  /** The agent's prompt, counted when a counter is given. */
  prompt?: string;
  /** Or its size, when already known. */
  promptTokens?: number;
  /** Files the agent will read: paths (counted when a counter is given) or a count. */
  filesToRead?: readonly string[] | number;
  edits?: number;
  testRuns?: number;
  gateRuns?: number;
}

export interface ContextEstimate {
  low: number;
  high: number;
  /** `high / contextWindow`. */
  ratio: number;
  /** `ok` within 70%; `split` when even the low estimate is over it; else `plan-continuation`. */
  risk: "ok" | "split" | "plan-continuation";
  warnings: string[];
  /** The architectural layers the files touch (see {@link layerOf}). */
  layers: string[];
}

const LAYER_PATTERNS: readonly [layer: string, pattern: RegExp][] = [
  ["tests", /(^|\/)(tests?|__tests__|spec|e2e)(\/|$)|\.(test|spec)\.[a-z]+$/i],
  ["frontend", /(^|\/)(frontend|components?|pages|views|ui|web|client|src-react|styles)(\/|$)|\.(tsx|jsx|vue|svelte|css|scss)$/i],
  ["framework", /(^|\/)(routes?|controllers?|handlers?|commands|api|server|src-tauri|middleware)(\/|$)/i],
  ["infrastructure", /(^|\/)(infrastructure|infra|db|database|repositor(y|ies)|sqlite|postgres|migrations|adapters?|persistence)(\/|$)/i],
  ["application", /(^|\/)(application|services?|use-?cases?)(\/|$)/i],
  ["domain", /(^|\/)(domain|entities|models?|types)(\/|$)/i],
];

/** The architectural layer a path belongs to, by its directories and extension, or undefined. */
export function layerOf(path: string): string | undefined {
  return LAYER_PATTERNS.find(([, pattern]) => pattern.test(path))?.[0];
}

/**
 * Estimates how much context a task will consume before an agent is spawned (seed 003): the
 * table's ranges, or real counts for the prompt and the files when a counter is given, checked
 * against the 70% rule, with the seed's warning signs.
 *
 * @example
 * const estimate = await estimateContext({ prompt, filesToRead: scope.files.map((file) => file.path), edits: 4, testRuns: 2, gateRuns: 1 }, { contextWindow: 200_000, counter, root: "backend-api" });
 */
export async function estimateContext(
  work: ContextWork,
  { contextWindow, counter, root }: { contextWindow: number; counter?: TokenCounter; root?: string },
): Promise<ContextEstimate> {
  if (!(contextWindow > 0))
    throw new InvalidArgumentError("options.contextWindow", `expected a positive token count, got ${contextWindow}`);
  const { prompt, promptTokens, filesToRead = [], edits = 0, testRuns = 0, gateRuns = 0 } = work;
  for (const [name, value] of Object.entries({ edits, testRuns, gateRuns, ...(promptTokens === undefined ? {} : { promptTokens }) })) {
    if (!(Number.isInteger(value) && value >= 0))
      throw new InvalidArgumentError(`work.${name}`, `expected a non-negative integer, got ${value}`);
  }
  let low = 0;
  let high = 0;
  const add = (range: readonly [number, number], times = 1) => {
    low += range[0] * times;
    high += range[1] * times;
  };

  const knownPrompt = promptTokens ?? (prompt !== undefined && counter ? await counter.count(prompt) : undefined);
  if (knownPrompt !== undefined) add([knownPrompt, knownPrompt]);
  else add(CONTEXT_COSTS.prompt);

  const paths = typeof filesToRead === "number" ? [] : filesToRead;
  const fileCount = typeof filesToRead === "number" ? filesToRead : filesToRead.length;
  if (counter && root === undefined && paths.length > 0)
    throw new InvalidArgumentError(
      "options.root",
      "a counter counts the files' real tokens: pass root, the directory the paths are relative to",
    );
  if (counter && root !== undefined && paths.length > 0) {
    const realRoot = await realpath(root).catch(() => {
      throw new InvalidArgumentError("options.root", `${root} does not exist`);
    });
    for (const path of paths) {
      // Paths come from the caller: they stay inside root, also through symlinks.
      const normalized = normalizeRepoPath(path);
      if (!normalized.ok) throw new PathOutsideRootError(path, root, normalized.reason);
      const real = await realpath(join(realRoot, normalized.path)).catch(() => undefined);
      if (real !== undefined && real !== realRoot && !real.startsWith(realRoot + sep))
        throw new PathOutsideRootError(path, root, "is a symlink that leads outside the root");
      const text = real === undefined ? undefined : await readFile(real, "utf8").catch(() => undefined);
      if (text === undefined) add(CONTEXT_COSTS.fileRead);
      else {
        const tokens = await counter.count(text);
        add([tokens, tokens]);
      }
    }
  } else add(CONTEXT_COSTS.fileRead, fileCount);
  add(CONTEXT_COSTS.edit, edits);
  add(CONTEXT_COSTS.testRun, testRuns);
  add(CONTEXT_COSTS.gateRun, gateRuns);

  const layers = [...new Set(paths.map(layerOf).filter((layer): layer is string => layer !== undefined && layer !== "tests"))];
  const warnings: string[] = [];
  const promptSize = knownPrompt ?? (prompt === undefined ? undefined : Math.ceil(Buffer.byteLength(prompt) / 4));
  if (promptSize !== undefined && promptSize > 5000)
    warnings.push(`the prompt is ${promptSize.toLocaleString("en-US")} tokens, over 5k: reference files instead of pasting them`);
  if (layers.length >= 4) warnings.push(`the work spans ${layers.length} layers (${layers.join(", ")}): split it before spawning`);
  if (fileCount >= 8) warnings.push(`the agent must read ${fileCount} files: point it at the patterns it needs instead`);
  if (layers.includes("frontend") && layers.some((layer) => layer !== "frontend"))
    warnings.push("backend and frontend work in one task: give each to its own agent");

  const limit = contextWindow * CONTEXT_RULE;
  const risk = high <= limit ? "ok" : low > limit ? "split" : "plan-continuation";
  return { low, high, ratio: high / contextWindow, risk, warnings, layers };
}

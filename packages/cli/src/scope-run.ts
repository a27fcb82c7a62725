import { createHash } from "node:crypto";
import { closeSync, openSync, readSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import type { ResolvedScope, TaskSpec, TokenCounter } from "@bulkhead/core/scope";
import { bulkheadHome } from "./home.js";

// How the command line resolves a spec's scope (`scope resolve`, `budget check`). Start-up is most
// of a small resolve's time, so on a warm run nothing heavy loads: `@bulkhead/core/scope` (no zod,
// no yaml), the spec from the cache of specs already validated, token counts from the persistent
// scope cache, and @bulkhead/budget (with its tokenizer) only when a text must really be counted.

/** Where the command line keeps its caches: `$BULKHEAD_HOME/cache`, else `~/.bulkhead/cache`; `BULKHEAD_SCOPE_CACHE=off` turns them off. */
export function cacheDirectory(): string | undefined {
  if (process.env.BULKHEAD_SCOPE_CACHE === "off") return undefined;
  return join(bulkheadHome(), "cache");
}

/**
 * An o200k_base counter that loads @bulkhead/budget on its first count: a resolve whose counts
 * are all cached never loads a tokenizer. Its name is the budget counter's, so the cache keys match.
 */
function lazyCounter(): TokenCounter & Disposable {
  let loaded: Promise<TokenCounter & Disposable> | undefined;
  const load = () =>
    (loaded ??= import("@bulkhead/budget").then(({ createTokenCounter }) => {
      const counter = createTokenCounter({ encoding: "o200k_base" });
      if (counter.name !== "o200k_base") throw new Error(`expected the o200k_base counter, got ${counter.name}`);
      return counter;
    }));
  return {
    name: "o200k_base",
    estimated: false,
    count: async (text) => (await load()).count(text),
    countMany: async (texts, options) => (await load()).countMany!(texts, options),
    countManyBytes: async (texts, options) => (await load()).countManyBytes!(texts, options),
    [Symbol.dispose]() {
      void loaded?.then((counter) => counter[Symbol.dispose]());
    },
  };
}

const require = createRequire(import.meta.url);
const SPECS_FORMAT = "bulkhead-task-specs 1";
/** The same bound loadTaskSpec reads a spec with (MAX_TASK_SPEC_BYTES). */
const SPEC_MAX_BYTES = 256 * 1024;

/** The spec file's bytes (at most the spec limit and one more), or undefined when it cannot be read. */
function specBytes(path: string): Buffer | undefined {
  try {
    const descriptor = openSync(path, "r");
    try {
      const buffer = Buffer.alloc(SPEC_MAX_BYTES + 1);
      let read = 0;
      for (let chunk; read < buffer.length && (chunk = readSync(descriptor, buffer, read, buffer.length - read, read)) > 0;) read += chunk;
      return read > SPEC_MAX_BYTES ? undefined : buffer.subarray(0, read);
    } finally {
      closeSync(descriptor);
    }
  } catch {
    return undefined;
  }
}

/**
 * The spec, validated: from the cache of specs already parsed (keyed by the sha256 of the file's
 * bytes and core's build), else by `loadTaskSpec` (zod, yaml), whose answer is then cached.
 */
async function loadSpec(path: string, cacheDir: string | undefined): Promise<TaskSpec> {
  const bytes = cacheDir === undefined ? undefined : specBytes(path);
  if (cacheDir === undefined || bytes === undefined) return (await import("@bulkhead/core")).loadTaskSpec(path);
  const { readChecksummedJson, writeChecksummedJson } = await import("@bulkhead/core/scope");
  const file = join(cacheDir, "task-specs.v1");
  // A spec is parsed by core's schema: another core version may read the same bytes otherwise.
  const { version } = require("@bulkhead/core/package.json") as { version: string };
  const key = createHash("sha256").update(`${version}\u0000`).update(bytes).digest("hex");
  const cached = readChecksummedJson(file, SPECS_FORMAT) as Record<string, TaskSpec> | undefined;
  const hit = cached?.[key];
  if (hit && typeof hit === "object" && Array.isArray(hit.contextScope?.repos)) return hit;
  const spec = await (await import("@bulkhead/core")).loadTaskSpec(path);
  // A few dozen specs at most: the oldest go first.
  const entries = Object.entries(cached ?? {})
    .filter(([other]) => other !== key)
    .slice(-63);
  await writeChecksummedJson(file, SPECS_FORMAT, Object.fromEntries([...entries, [key, spec]]));
  return spec;
}

/**
 * Loads a spec and resolves its scope the command line's way: the o200k counter, the persistent
 * cache, and `stopAtLimit` (an over-limit scope is refused after counting about its limit).
 */
export async function resolveSpecScope(
  specPath: string,
  repos: Record<string, string>,
  check: (spec: TaskSpec) => void,
): Promise<{ spec: TaskSpec; scope: ResolvedScope }> {
  const cacheDir = cacheDirectory();
  const spec = await loadSpec(specPath, cacheDir);
  check(spec);
  const { createScopeCache, resolveValidatedScope } = await import("@bulkhead/core/scope");
  // The options are built here (repoMap checked the --repo values): the validating entry is not needed.
  using counter = lazyCounter();
  const cache = cacheDir === undefined ? false : createScopeCache({ directory: cacheDir });
  return { spec, scope: await resolveValidatedScope(spec, { repos, counter, cache, stopAtLimit: true }) };
}

/** What to take out of an over-limit scope; null when it fits. Said to be estimated when counting stopped at the limit. */
export async function adviceFor(
  scope: { files: readonly { repo: string; path: string; tokens: number }[]; complete: boolean },
  limits: { maxFiles: number; maxTokens: number },
) {
  const { suggestNarrowing } = await import("@bulkhead/core/scope");
  const advice = suggestNarrowing(scope.files, limits);
  return advice.remove.length === 0 && advice.fits ? null : { ...advice, estimated: !scope.complete };
}

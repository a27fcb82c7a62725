import { existsSync } from "node:fs";
import { single, UsageError, type Command, type Flags, type Outcome } from "./command.js";
import { repoMap } from "./repo-map.js";

/** `--ref <repo>/<file>:<line>=<what>` (or without the repo) → a pattern reference for the continuation prompt. */
export function parseReference(text: string, repos: readonly string[]): { repo?: string; file: string; line: number; what: string } {
  const match = /^([^=]+):(\d+)=(.+)$/s.exec(text);
  if (!match) throw new UsageError(`--ref: expected <file>:<line>=<what to follow there>, got "${text}"`);
  const [, path, line, what] = match as unknown as [string, string, string, string];
  const slash = path.indexOf("/");
  const repo = slash > 0 && repos.includes(path.slice(0, slash)) ? path.slice(0, slash) : undefined;
  return { ...(repo ? { repo } : {}), file: repo ? path.slice(slash + 1) : path, line: Number(line), what };
}

/**
 * `bulkhead continue <spec>`: what the previous agent finished, what remains, and the prompt for
 * the next one, with pattern references and the project's own check run before anything spawns.
 * Exit 0 when nothing remains, 2 when work remains (the task is partial) or the check fails.
 */
async function continueFromSpec(specPath: string, flags: Flags): Promise<Outcome> {
  const { loadTaskSpec } = await import("@bulkhead/core");
  const { assessCompletion, checkBeforeSpawn, renderContinuationPrompt } = await import("@bulkhead/handover");
  const spec = await loadTaskSpec(specPath);
  if (spec.expectedFiles.length === 0)
    throw new UsageError(
      `${specPath} lists no expected_files: continue compares them with the repositories, so add what the task must create or modify`,
    );
  const repos = repoMap(flags.repo as string[] | undefined, "--repo");
  const base = repoMap(flags.base as string[] | undefined, "--base");
  const expected = spec.expectedFiles.map((file) => ({ repo: file.repo, path: file.path, change: file.change ?? "modify" }));
  for (const item of expected) {
    if (!(item.repo in repos)) throw new UsageError(`--repo: ${specPath} expects files in "${item.repo}": pass --repo ${item.repo}=<dir>`);
    if (!(item.repo in base)) throw new UsageError(`--base: pass the commit the task started from, --base ${item.repo}=<sha>`);
  }
  const references = ((flags.ref as string[] | undefined) ?? []).map((text) => parseReference(text, Object.keys(repos)));
  const assessment = await assessCompletion({ expected, repos, base });
  const prompt = renderContinuationPrompt({ assessment, task: spec, references });
  // Seed 003: check before spawning. The project's own check, in the primary repo.
  const checkCommand = single(flags, "check");
  const check =
    checkCommand === undefined
      ? undefined
      : await checkBeforeSpawn({ command: ["sh", "-c", checkCommand], cwd: repos[spec.ownership.primaryRepo] ?? Object.values(repos)[0]! });
  const complete = assessment.missing.length === 0;
  const text = [
    prompt.trimEnd(),
    "",
    ...(check
      ? [`check \`${checkCommand}\`: ${check.ok ? "passed" : `failed (exit ${check.exitCode}): fix the partial state before spawning`}`]
      : []),
    complete ? "nothing remains: the task is complete" : `${assessment.missing.length} item(s) remain: the task is partial`,
  ];
  return { code: complete && (check?.ok ?? true) ? 0 : 2, data: { complete, assessment, prompt, check: check ?? null }, text };
}

/** `bulkhead continue`: the continuation of a task from its spec. */
export const continueCommands: Record<string, Command> = {
  continue: {
    usage:
      "bulkhead continue <spec> --repo <name>=<dir> ... --base <name>=<sha> ... [--ref <file>:<line>=<what>]... [--check <shell command>]",
    example:
      "bulkhead continue handover.yaml --repo backend-api=. --base backend-api=abc123 --ref src/routes/user.ts:12='route registration' --check 'npx tsc --noEmit'",
    async run([target], flags) {
      if (!existsSync(target!)) throw new UsageError(`<spec>: ${target} does not exist: pass the task's spec file`);
      return continueFromSpec(target!, flags);
    },
  },
};

import { writeFile } from "node:fs/promises";
import { createTokenCounter } from "@bulkhead/budget";
import { InvalidArgumentError, loadTaskSpec, resolveScope } from "@bulkhead/core";
import { loadHandover } from "@bulkhead/handover";
import {
  acceptMemoryEntry,
  createFileMemoryStore,
  dropMemoryEntry,
  formatMemoryProblem,
  parseApplies,
  proposeFromHandover,
  proposeMemoryEntry,
  renderMemorySection,
  selectMemory,
  writeMemoryInstructions,
  type MemoryEdit,
  type MemoryEntry,
  type MemoryKind,
} from "@bulkhead/memory";

import { memoryDirOf } from "./dispatch-memory.js";

type Flags = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** The same shape as main's commands: an exit code (0 ok, 1 failure, 2 refused), data for --json, lines for people. */
interface MemoryCommand {
  usage: string;
  example: string;
  run(positionals: string[], flags: Flags): Promise<{ code: 0 | 1 | 2; data: unknown; text: string[] }>;
}

/** The memory directory: `--dir`, else `$BULKHEAD_MEMORY_DIR`, else `memory` (reviewed and committed with the workspace). */
function storeOf(flags: Flags) {
  return createFileMemoryStore(memoryDirOf(flags.dir));
}

function appliesOf(flags: Flags): MemoryEntry["applies"] | undefined {
  const values = (flags.applies as string[] | undefined) ?? [];
  if (values.length === 0) return undefined;
  const applies = parseApplies(values.flatMap((value) => value.split(",")));
  if (!applies) throw new InvalidArgumentError("--applies", `expected workspace, <repo> or <repo>:<path>, got ${values.join(", ")}`);
  return applies;
}

const line = (entry: MemoryEntry) =>
  `${entry.id}  ${entry.status.padEnd(8)}  ${entry.kind.padEnd(10)}  ${entry.title}  [${entry.applies === "workspace" ? "workspace" : entry.applies.map((target) => (target.paths.length === 0 ? target.repo : `${target.repo}:${target.paths.join(",")}`)).join(" ")}]`;

/** `bulkhead memory …`: propose, list, accept, drop and select project-memory entries. */
export const memoryCommands: Record<string, MemoryCommand> = {
  "memory propose": {
    usage:
      "bulkhead memory propose [<handover.md>] [--dir <memory>] [--by <who>] [--kind decision|learning|convention --title <text> --applies <target>...]",
    example: "bulkhead memory propose handover.md --by agent@s123 --json",
    async run([path], flags) {
      const store = storeOf(flags);
      const by = typeof flags.by === "string" ? flags.by : undefined;
      let entries: MemoryEntry[];
      if (path !== undefined) {
        const applies = appliesOf(flags);
        entries = proposeFromHandover(await loadHandover(path), { ...(by ? { by } : {}), ...(applies ? { applies } : {}) });
      } else {
        const applies = appliesOf(flags);
        if (typeof flags.kind !== "string" || typeof flags.title !== "string" || !applies || !by)
          throw new InvalidArgumentError("arguments", "give a handover file, or --kind, --title, --applies and --by for one entry");
        entries = [
          proposeMemoryEntry({
            kind: flags.kind as MemoryKind,
            title: flags.title,
            applies,
            source: { kind: "person", ref: by, by },
            ...(typeof flags.expires === "string" ? { expiresAt: flags.expires } : {}),
          }),
        ];
      }
      const results = [];
      for (const entry of entries) results.push({ id: entry.id, kind: entry.kind, title: entry.title, result: await store.create(entry) });
      const created = results.filter((result) => result.result === "created").length;
      return {
        code: 0,
        data: { proposed: results },
        text: [
          ...results.map(
            (result) => `${result.id}  ${result.result === "created" ? "proposed" : "already known"}  ${result.kind}  ${result.title}`,
          ),
          `${created} proposed, ${results.length - created} already known: review with bulkhead memory list --status proposed`,
        ],
      };
    },
  },
  "memory list": {
    usage: "bulkhead memory list [--dir <memory>] [--status proposed|accepted|dropped|all]",
    example: "bulkhead memory list --status proposed --json",
    async run(_positionals, flags) {
      const status = typeof flags.status === "string" ? flags.status : "live";
      if (!["proposed", "accepted", "dropped", "all", "live"].includes(status))
        throw new InvalidArgumentError("--status", `expected proposed, accepted, dropped or all, got "${status}"`);
      const { entries, problems, usage } = await storeOf(flags).list();
      const shown = entries.filter(
        (entry) => status === "all" || (status === "live" ? entry.status !== "dropped" : entry.status === status),
      );
      return {
        code: 0,
        data: { entries: shown, problems, usage },
        text: [
          ...(shown.length === 0 ? ["no entries"] : shown.map(line)),
          // A malformed file is reported, never used: fix it or remove it.
          ...problems.map((problem) => `skipped: ${formatMemoryProblem(problem)}`),
        ],
      };
    },
  },
  "memory accept": {
    usage: "bulkhead memory accept <id> --by <person> [--dir <memory>] [--title <text>] [--applies <target>...] [--expires <iso time>]",
    example: "bulkhead memory accept m-3f9a2c41d0e7 --by alice --applies workspace",
    async run([id], flags) {
      const edit: MemoryEdit = {};
      const applies = appliesOf(flags);
      if (applies) edit.applies = applies;
      if (typeof flags.title === "string") edit.title = flags.title;
      if (typeof flags.expires === "string") edit.expiresAt = flags.expires;
      const entry = await acceptMemoryEntry(storeOf(flags), id!, { by: String(flags.by), edit });
      return { code: 0, data: entry, text: [`accepted ${line(entry)}`] };
    },
  },
  "memory drop": {
    usage: "bulkhead memory drop <id> --by <person> [--dir <memory>] [--reason <text>]",
    example: "bulkhead memory drop m-3f9a2c41d0e7 --by alice --reason 'one-off'",
    async run([id], flags) {
      const entry = await dropMemoryEntry(storeOf(flags), id!, {
        by: String(flags.by),
        ...(typeof flags.reason === "string" ? { reason: flags.reason } : {}),
      });
      return { code: 0, data: entry, text: [`dropped ${line(entry)}`] };
    },
  },
  "memory select": {
    usage:
      "bulkhead memory select <spec> --repo <name>=<dir> ... [--dir <memory>] [--memory-tokens N] [--out section.md] [--instructions <workspace>] [--record]",
    example: "bulkhead memory select handover.yaml --repo backend-api=../backend-api --out memory.md --json",
    async run([specPath], flags) {
      const repos: Record<string, string> = {};
      for (const value of (flags.repo as string[] | undefined) ?? []) {
        const at = value.indexOf("=");
        if (at <= 0 || at === value.length - 1) throw new InvalidArgumentError("--repo", `expected name=dir, got "${value}"`);
        repos[value.slice(0, at)] = value.slice(at + 1);
      }
      const spec = await loadTaskSpec(specPath!);
      using counter = createTokenCounter({ encoding: "o200k_base" });
      const scope = await resolveScope(spec, { repos, counter });
      const store = storeOf(flags);
      const { entries, usage, problems } = await store.list();
      const maxTokens = typeof flags["memory-tokens"] === "string" ? Number(flags["memory-tokens"]) : undefined;
      if (maxTokens !== undefined && !(Number.isInteger(maxTokens) && maxTokens >= 0))
        throw new InvalidArgumentError("--memory-tokens", `expected a whole number of tokens, got "${String(flags["memory-tokens"])}"`);
      const selection = await selectMemory({ entries, usage, spec, scope, counter, ...(maxTokens === undefined ? {} : { maxTokens }) });
      const section = renderMemorySection(selection);
      if (typeof flags.out === "string") await writeFile(flags.out, section);
      const instructions =
        typeof flags.instructions === "string" ? await writeMemoryInstructions({ directory: flags.instructions, selection }) : undefined;
      const ids = selection.selected.map((item) => item.entry.id);
      if (flags.record === true && ids.length > 0) await store.recordUse(ids, new Date().toISOString());
      // The memory section is read as context: scope and memory together must fit the context budget.
      const total = scope.totals.tokens + selection.tokens;
      const allowed = total <= selection.contextRead && scope.violations.length === 0;
      const data = {
        selected: selection.selected.map((item) => ({ id: item.entry.id, tokens: item.tokens, specificity: item.specificity })),
        notFitted: selection.notFitted,
        memoryTokens: selection.tokens,
        memoryBudget: selection.budget,
        context: { scopeTokens: scope.totals.tokens, memoryTokens: selection.tokens, total, limit: selection.contextRead, allowed },
        section,
        problems,
        ...(instructions ? { instructions } : {}),
      };
      return {
        code: allowed ? 0 : 2,
        data,
        text: [
          ...(section === "" ? [] : [section.trimEnd(), ""]),
          `memory: ${ids.length} entries, ${selection.tokens} tokens of ${selection.budget} (${selection.notFitted.length} did not fit${selection.notFitted.length > 0 ? `: ${selection.notFitted.join(", ")}` : ""})`,
          `context: ${scope.totals.tokens} scope + ${selection.tokens} memory = ${total} tokens of ${selection.contextRead}: ${allowed ? "ok" : "over budget: narrow the scope"}`,
          ...(instructions?.skipped ?? []).map((skip) => `instructions: left ${skip.path} alone: ${skip.reason}`),
          ...problems.map((problem) => `skipped: ${formatMemoryProblem(problem)}`),
        ],
      };
    },
  },
};

// `npm run mutation` (a stage of `npm test`): a small mutation pass. For one file of key logic per
// package it makes single-token changes (a comparison flipped, && for ||, true for false, + for -),
// runs that file's tests against each changed source, and counts the mutants the tests kill. A
// package under GOAL fails the run: its tests would not notice a bug on those lines.
//
// Bounded: at most MAX_PER_PACKAGE mutants per package, chosen evenly over the file, deterministic,
// two at a time (never two in one package, so no two mutants share a file). Each mutant has a time
// allowance (a multiple of the unmutated run's time); a run over it counts as killed (a hang is noticed).
// The source is restored after every mutant, and on exit or interrupt. A mutant no test can tell
// from the original (an equivalent one) is listed in its target's `equivalent`, with the reason.
//
// Options: --package <name> (only that one), --list (print the mutants, run nothing),
// --write-benchmarks (write the table into docs/benchmarks.md).
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
export const GOAL = 0.8;
const MAX_PER_PACKAGE = Number(process.env.BULKHEAD_MUTANTS_PER_PACKAGE ?? 12);

/**
 * The covered files: key logic with fast unit tests (no Docker, no PostgreSQL). `functions`
 * narrows a file to the named top-level functions, `filter` the test file to the tests of that
 * file (vitest -t). postgres's tests start a private server each (tools/test-utils/src/postgres.ts),
 * about 4 s a run, so its target is the budget store's own checks and lease arithmetic.
 */
export const TARGETS = [
  { package: "core", file: "packages/core/src/repo-path.ts", tests: ["packages/core/src/repo-path.test.ts"] },
  { package: "budget", file: "packages/budget/src/normalize-usage.ts", tests: ["packages/budget/src/normalize-usage.test.ts"] },
  {
    package: "sandbox",
    file: "packages/sandbox/src/read-changes.ts",
    functions: ["realDirectory", "readFileNoFollow"],
    tests: ["packages/sandbox/src/read-changes-files.test.ts"],
    // One read returns a whole regular file here, so the loop's bounds never matter to the result.
    equivalent: [
      { code: "while (offset < stat.size) {", from: "<", reason: "reading at the end returns 0 bytes and breaks" },
      {
        code: "return { bytes: offset === stat.size ? bytes : bytes.subarray(0, offset), executable: (stat.mode & 0o100) !== 0 };",
        from: "===",
        reason: "a subarray of the whole length holds the same bytes",
      },
    ],
  },
  {
    package: "git-lead",
    file: "packages/git-lead/src/plan-waves.ts",
    tests: ["packages/git-lead/src/planning.test.ts"],
    filter: "planWaves",
    equivalent: [
      {
        code: "return [...tasks].sort((left, right) => (left.id < right.id ? -1 : left.id > right.id ? 1 : 0));",
        from: "<",
        reason: "ids are unique (checked above), so no two compare equal",
      },
    ],
  },
  { package: "handover", file: "packages/handover/src/estimate-context.ts", tests: ["packages/handover/src/estimate-context.test.ts"] },
  {
    package: "agents",
    file: "packages/agents/src/line-parser.ts",
    tests: ["packages/agents/src/line-parser.test.ts", "packages/agents/src/parsers.test.ts"],
    equivalent: [
      {
        code: 'return typeof value === "object" && value !== null && !Array.isArray(value) ? toEvents(value as Record<string, unknown>) : [];',
        from: "&&",
        reason: "only text that starts with { is parsed, and JSON that starts with { is always a plain object",
      },
      {
        code: 'export const asCount = (value: unknown): number => (typeof value === "number" && Number.isInteger(value) && value >= 0 ? value : 0);',
        from: ">=",
        reason: "a count of 0 is returned as 0 on both branches",
      },
    ],
  },
  {
    package: "gateway",
    file: "packages/gateway/src/sse-parser.ts",
    tests: ["packages/gateway/src/sse-parser.test.ts"],
    // The field rules are budget's sseFields (the target below); this file is the frame scanner and its fast path.
    equivalent: [
      {
        code: "if (start < chunk.length) {",
        from: "<",
        reason: "at start === chunk.length the kept part is empty and adds 0 bytes",
      },
    ],
  },
  {
    package: "budget",
    file: "packages/budget/src/adapters/observe-sse.ts",
    // The SSE field parser the gateway and the meters share.
    functions: ["sseFields"],
    tests: ["packages/budget/src/adapters/observe-sse.test.ts"],
    filter: "sseFields|SSE rules",
    equivalent: [
      {
        code: 'if (line === "" || line.startsWith(":")) continue;',
        from: "||",
        reason: "an empty or comment line has no field the parser keeps",
      },
    ],
  },
  {
    package: "memory",
    file: "packages/memory/src/select-memory.ts",
    // The selection rules, not the caches beside them (a cache mutant only costs time).
    functions: ["compareCandidates", "compareStanding", "buildRepoViews", "touchDepth", "classify"],
    equivalent: [
      {
        code: "(left.entry.id < right.entry.id ? -1 : left.entry.id > right.entry.id ? 1 : 0)",
        from: "<",
        reason: "entry ids are unique, so no two compare equal",
      },
      {
        code: "(left.entry.id < right.entry.id ? -1 : left.entry.id > right.entry.id ? 1 : 0)",
        from: ">",
        reason: "entry ids are unique, so no two compare equal",
      },
      {
        code: "for (let index = 0; index < path.length; index++) if (path.charCodeAt(index) === 47) depth++;",
        from: "<",
        reason: "charCodeAt past the end is NaN, never a slash",
      },
      {
        code: 'return slash <= 0 ? "." : path.slice(0, slash);',
        from: "<=",
        reason: "a scope path never starts with / (the spec refuses it)",
      },
    ],
    tests: ["packages/memory/src/select-memory.test.ts"],
  },
  {
    package: "core",
    file: "packages/core/src/format-usd.ts",
    tests: ["packages/core/src/format-usd.test.ts"],
    equivalent: [
      {
        code: 'const sign = usd < 0 ? "-" : "";',
        from: "<",
        reason: "zero returns $0.00 before the sign is used",
      },
      {
        code: "if (amount >= 0.01) return `${sign}$${amount.toFixed(2)}`;",
        from: ">=",
        reason: "exactly a cent prints $0.01 on both paths (4 significant digits, trailing zeros dropped)",
      },
    ],
  },
  {
    package: "cli",
    file: "packages/cli/src/main.ts",
    // The usage-line reader every verb's argument checks come from (the CLI table walks each verb).
    functions: ["requirements"],
    tests: ["packages/cli/src/cli-table.test.ts", "packages/cli/src/main.test.ts"],
  },
  {
    package: "postgres",
    file: "packages/postgres/src/postgres-budget-store.ts",
    tests: ["packages/postgres/src/postgres-budget-store.test.ts", "packages/postgres/src/lease-pruning.test.ts"],
    equivalent: [
      {
        code: "while ((await sweep()) >= 1000);",
        from: ">=",
        reason: "a batch of exactly 1,000 leaves the rest to the next tick or the next refused reservation's sweep",
      },
    ],
  },
];

// Each operator: a pattern for one token (with the spaces around it, so generics and arrows are
// not touched) and its replacement.
const OPERATORS = [
  [/ === /g, " !== "],
  [/ !== /g, " === "],
  [/ <= /g, " < "],
  [/ >= /g, " > "],
  [/ < /g, " <= "],
  [/ > /g, " >= "],
  [/ && /g, " || "],
  [/ \|\| /g, " && "],
  [/\btrue\b/g, "false"],
  [/\bfalse\b/g, "true"],
  [/ \+ 1\b/g, " - 1"],
  [/ - 1\b/g, " + 1"],
];

/**
 * Blanks out string literals, template text and comments, so only code is mutated: one scan over
 * the whole source, so a template literal or block comment spanning lines (an SQL statement, a
 * JSDoc) is blanked on every line it covers. `${...}` inside a template is code. Same lengths, so
 * columns still match the source.
 */
export function codeOnly(source) {
  let out = "";
  // The stack of open contexts: "`" (template text) or "{" (a brace, in code or in `${`).
  const stack = [];
  let at = 0;
  const blank = (text) => text.replace(/[^\n]/g, " ");
  while (at < source.length) {
    const char = source[at];
    const inTemplate = stack.at(-1) === "`";
    if (inTemplate) {
      if (char === "\\") {
        out += blank(source.slice(at, at + 2));
        at += 2;
      } else if (char === "`") {
        stack.pop();
        out += " ";
        at++;
      } else if (char === "$" && source[at + 1] === "{") {
        stack.push("${");
        out += "  ";
        at += 2;
      } else {
        out += char === "\n" ? "\n" : " ";
        at++;
      }
      continue;
    }
    if (char === "/" && source[at + 1] === "/") {
      const end = source.indexOf("\n", at);
      const stop = end === -1 ? source.length : end;
      out += blank(source.slice(at, stop));
      at = stop;
    } else if (char === "/" && source[at + 1] === "*") {
      const end = source.indexOf("*/", at + 2);
      const stop = end === -1 ? source.length : end + 2;
      out += blank(source.slice(at, stop));
      at = stop;
    } else if (char === '"' || char === "'") {
      let end = at + 1;
      while (end < source.length && source[end] !== char && source[end] !== "\n") end += source[end] === "\\" ? 2 : 1;
      out += blank(source.slice(at, end + 1));
      at = end + 1;
    } else if (char === "`") {
      stack.push("`");
      out += " ";
      at++;
    } else {
      if (char === "{") stack.push("{");
      else if (char === "}") {
        // The `}` closing a `${` goes back to template text, and is not code.
        if (stack.pop() === "${") {
          out += " ";
          at++;
          continue;
        }
      }
      out += char;
      at++;
    }
  }
  return out;
}

/**
 * The 0-based line numbers inside the named top-level functions (from `function name(` or
 * `const name =` to the next line that is a lone `}` or `};`), or every line when `functions` is unset.
 */
function linesOf(lines, functions) {
  if (!functions) return new Set(lines.keys());
  const inside = new Set();
  lines.forEach((line, index) => {
    const opens = functions.some((name) => new RegExp(`^(export )?(async )?(function ${name}\\b|const ${name} =)`).test(line));
    if (!opens) return;
    for (let at = index; at < lines.length; at++) {
      inside.add(at);
      if (at > index && /^\};?$/.test(lines[at])) break;
    }
  });
  return inside;
}

/** Every single-token mutant of a source text, in file order: `{ line, column, from, to, text }`. */
export function mutantsOf(source, functions) {
  const lines = source.split("\n");
  const codeLines = codeOnly(source).split("\n");
  const covered = linesOf(lines, functions);
  const mutants = [];
  lines.forEach((line, index) => {
    if (!covered.has(index)) return;
    if (/^(import|export \{|export type|type |interface )/.test(line.trim())) return;
    const code = codeLines[index];
    for (const [pattern, replacement] of OPERATORS) {
      for (const match of code.matchAll(pattern)) {
        const mutated = line.slice(0, match.index) + replacement + line.slice(match.index + match[0].length);
        const text = [...lines.slice(0, index), mutated, ...lines.slice(index + 1)].join("\n");
        mutants.push({ line: index + 1, column: match.index + 1, from: match[0].trim(), to: replacement.trim(), text });
      }
    }
  });
  return mutants;
}

/** At most `count` of the mutants, spread evenly over the file. */
export function spread(mutants, count) {
  if (mutants.length <= count) return mutants;
  return Array.from({ length: count }, (_, index) => mutants[Math.floor((index * mutants.length) / count)]);
}

function runTests(target, allowanceMs) {
  const args = [join(root, "node_modules", "vitest", "vitest.mjs"), "run", ...target.tests, "--bail=1", "--reporter=dot"];
  if (target.filter) args.push("-t", target.filter);
  return new Promise((done) => {
    const started = Date.now();
    const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], detached: true });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    let timedOut = false;
    const timer =
      allowanceMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            // The whole group: vitest's forks too.
            try {
              process.kill(-child.pid, "SIGKILL");
            } catch {
              // already gone
            }
          }, allowanceMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      done({ passed: code === 0 && !timedOut, timedOut, ms: Date.now() - started, output });
    });
  });
}

const originals = new Map();
function restoreAll() {
  for (const [file, text] of originals) writeFileSync(join(root, file), text);
}
process.on("exit", restoreAll);
for (const signal of ["SIGINT", "SIGTERM"])
  process.on(signal, () => {
    restoreAll();
    process.exit(130);
  });

async function runTarget(target, log) {
  const path = join(root, target.file);
  const original = readFileSync(path, "utf8");
  originals.set(target.file, original);
  // Known equivalent mutants (no test can tell them from the original) are listed per target
  // with a reason, by the line's code and the token, and left out of the score.
  const lines = original.split("\n");
  const isEquivalent = (mutant) =>
    (target.equivalent ?? []).some((known) => known.from === mutant.from && lines[mutant.line - 1].trim() === known.code);
  const all = spread(mutantsOf(original, target.functions), MAX_PER_PACKAGE);
  const mutants = all.filter((mutant) => !isEquivalent(mutant));
  const equivalent = all.length - mutants.length;
  const baseline = await runTests(target);
  if (!baseline.passed) throw new Error(`mutation: the tests of ${target.file} fail without any mutant:\n${baseline.output.slice(-3000)}`);
  const allowanceMs = Math.max(20_000, baseline.ms * 4);
  const survivors = [];
  let killed = 0;
  try {
    for (const mutant of mutants) {
      writeFileSync(path, mutant.text);
      const result = await runTests(target, allowanceMs);
      if (result.passed) survivors.push(`${target.file}:${mutant.line}:${mutant.column} ${mutant.from} → ${mutant.to}`);
      else killed++;
    }
  } finally {
    writeFileSync(path, original);
    originals.delete(target.file);
  }
  const score = mutants.length === 0 ? 1 : killed / mutants.length;
  log(
    `${target.package}: ${killed}/${mutants.length} killed (${(score * 100).toFixed(0)}%) in ${target.file}${equivalent > 0 ? ` (${equivalent} known equivalent left out)` : ""}`,
  );
  for (const survivor of survivors) log(`  survived: ${survivor}`);
  return { ...target, total: mutants.length, killed, score, survivors, equivalent };
}

/** Runs the targets two at a time and returns one result per package. */
export async function runMutation(targets, { log = console.error, parallel = 2 } = {}) {
  const queue = [...targets];
  const results = [];
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let target = queue.shift(); target; target = queue.shift()) results.push(await runTarget(target, log));
    }),
  );
  return targets.map((target) => results.find((result) => result.file === target.file));
}

function benchmarksSection(results, seconds) {
  const rows = results.map(
    (result) =>
      `| ${result.package} | \`${result.file.replace(/^packages\/[^/]+\//, "")}\`${result.functions ? ` (${result.functions.join(", ")})` : ""} | ${result.killed}/${result.total} | ${result.equivalent} | ${(result.score * 100).toFixed(0)}% |`,
  );
  return [
    "<!-- mutation:start (written by `node scripts/mutation.mjs --write-benchmarks`) -->",
    "",
    "## Mutation score (scripts/mutation.mjs)",
    "",
    `Single-token mutants (comparisons, \`&&\`/\`||\`, booleans, \`± 1\`) of one key file per package, at most ${MAX_PER_PACKAGE} each, against that file's tests; goal ≥ ${GOAL * 100}% killed per package. The whole pass took ${seconds.toFixed(0)} s on this machine (2 cores, shared).`,
    "",
    "| package | file | killed | known equivalent (left out) | score |",
    "| ------- | ---- | ------ | --------------------------- | ----- |",
    ...rows,
    "",
    "<!-- mutation:end -->",
  ].join("\n");
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const only = process.argv.includes("--package") ? process.argv[process.argv.indexOf("--package") + 1] : undefined;
  const targets = TARGETS.filter((target) => only === undefined || target.package === only);
  if (process.argv.includes("--list")) {
    for (const target of targets)
      for (const mutant of spread(mutantsOf(readFileSync(join(root, target.file), "utf8"), target.functions), MAX_PER_PACKAGE))
        console.log(`${target.file}:${mutant.line}:${mutant.column} ${mutant.from} → ${mutant.to}`);
  } else {
    const started = Date.now();
    const results = await runMutation(targets);
    const seconds = (Date.now() - started) / 1000;
    const low = results.filter((result) => result.score < GOAL);
    console.error(`\nmutation: ${results.length} package(s) in ${seconds.toFixed(0)} s`);
    if (process.argv.includes("--write-benchmarks")) {
      const path = join(root, "docs", "benchmarks.md");
      const text = readFileSync(path, "utf8");
      const section = benchmarksSection(results, seconds);
      const marked = /<!-- mutation:start[\s\S]*?<!-- mutation:end -->/;
      const written = marked.test(text) ? text.replace(marked, section) : `${text.trimEnd()}\n\n${section}\n`;
      // Formatted as `prettier --check .` wants it, so the written page passes lint as it is.
      const prettier = await import("prettier");
      writeFileSync(path, await prettier.format(written, { ...(await prettier.resolveConfig(path)), filepath: path }));
    }
    if (low.length > 0) {
      console.error(
        `mutation: under the goal of ${GOAL * 100}% killed: ${low.map((result) => `${result.package} (${(result.score * 100).toFixed(0)}%)`).join(", ")}. Add a test that fails on each surviving mutant listed above.`,
      );
      process.exitCode = 1;
    }
  }
}

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTempDir } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { BulkheadError } from "./bulkhead-error.js";
import { InvalidTaskSpecError } from "./invalid-task-spec-error.js";
import { loadTaskSpec, MAX_TASK_SPEC_BYTES, parseTaskSpec } from "./parse-task-spec.js";
import { taskSpecJsonSchema } from "./task-spec-json-schema.js";
import { taskSpecToFile } from "./task-spec.js";

const seed = readFileSync(new URL("../test/fixtures/seed-000.handover.yaml", import.meta.url), "utf8");

/** A valid spec; each malformed case changes one or two lines of it. */
const valid = `task: "Add rate limiting to user API"
context_scope:
  repos:
    - name: "backend-api"
      paths: ["src/routes/user.ts", "src/middleware/"]
      exclude: ["src/routes/admin.ts"]
  max_files: 15
  max_tokens: 50000
ownership:
  primary_repo: "backend-api"
  allowed_cross_repo_reads: ["shared-types"]
  allowed_cross_repo_writes: []
`;

function problemsOf(text: string, options: Parameters<typeof parseTaskSpec>[1] = {}): string[] {
  try {
    parseTaskSpec(text, { source: "handover.yaml", ...options });
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidTaskSpecError);
    return (error as InvalidTaskSpecError).message.split("\n").slice(1);
  }
  throw new Error("expected the spec to be refused");
}

describe("parseTaskSpec", () => {
  it("parses seed 000's example unchanged, into camelCase", () => {
    const spec = parseTaskSpec(seed, { source: "handover.yaml" });
    expect(spec).toEqual({
      task: "Add rate limiting to user API",
      dependsOn: [],
      contextScope: {
        repos: [{ name: "backend-api", paths: ["src/routes/user.ts", "src/middleware"], exclude: ["src/routes/admin.ts"] }],
        maxFiles: 15,
        maxTokens: 50000,
      },
      ownership: { primaryRepo: "backend-api", allowedCrossRepoReads: ["shared-types"], allowedCrossRepoWrites: [] },
      budgets: {},
      expectedFiles: [],
    });
  });

  it("parses the same spec written as JSON", () => {
    const json = JSON.stringify(taskSpecToFile(parseTaskSpec(seed)));
    expect(parseTaskSpec(json, { source: "handover.json" })).toEqual(parseTaskSpec(seed));
  });

  it("maps budgets, ids, dependencies and expected files", () => {
    const spec = parseTaskSpec(
      `${valid}id: rate-limit\ndepends_on: [redis-client]\nbudgets:\n  context_read: 50000\n  generation: 10000\n  tool_calls: 20000\n  session_total: 100000\n  usd: 2.5\nexpected_files:\n  - path: src/middleware/rateLimit.ts\n    change: create\n`,
    );
    expect(spec.id).toBe("rate-limit");
    expect(spec.dependsOn).toEqual(["redis-client"]);
    expect(spec.budgets).toEqual({ contextRead: 50000, generation: 10000, toolCalls: 20000, sessionTotal: 100000, usd: 2.5 });
    expect(spec.expectedFiles).toEqual([{ repo: "backend-api", path: "src/middleware/rateLimit.ts", change: "create" }]);
    expect(parseTaskSpec(JSON.stringify(taskSpecToFile(spec)))).toEqual(spec);
  });

  const malformed: [name: string, text: string, messages: string[], options?: Parameters<typeof parseTaskSpec>[1]][] = [
    [
      "max_files as a word",
      valid.replace("max_files: 15", 'max_files: "fifteen"'),
      ['handover.yaml:7:14 context_scope.max_files: expected a positive integer, got "fifteen"'],
    ],
    [
      "max_files zero",
      valid.replace("max_files: 15", "max_files: 0"),
      ["handover.yaml:7:14 context_scope.max_files: expected a positive integer, got 0"],
    ],
    [
      "max_tokens fractional",
      valid.replace("max_tokens: 50000", "max_tokens: 1.5"),
      ["handover.yaml:8:15 context_scope.max_tokens: expected a positive integer, got 1.5"],
    ],
    [
      "max_tokens missing",
      valid.replace("  max_tokens: 50000\n", ""),
      ["handover.yaml:3:3 context_scope.max_tokens: is required: expected a positive integer"],
    ],
    [
      "task missing",
      valid.replace('task: "Add rate limiting to user API"\n', ""),
      ["handover.yaml:1:1 task: is required: expected a one-line description of the task"],
    ],
    [
      "task blank",
      valid.replace('task: "Add rate limiting to user API"', 'task: "  "'),
      ['handover.yaml:1:7 task: expected a one-line description of the task, got ""'],
    ],
    ["unknown top-level key", `${valid}budget: {}\n`, ['handover.yaml:13:1 budget: unknown key; did you mean "budgets"?']],
    [
      "unknown nested key",
      valid.replace("max_files: 15", "max_file: 15"),
      [
        'handover.yaml:7:3 context_scope.max_file: unknown key; did you mean "max_files"?',
        "handover.yaml:3:3 context_scope.max_files: is required: expected a positive integer",
      ].reverse(),
    ],
    [
      "unknown key with no neighbour",
      `${valid}colour: blue\n`,
      ["handover.yaml:13:1 colour: unknown key; expected one of: task, id, depends_on, context_scope, ownership, budgets, expected_files"],
    ],
    [
      "path climbing out",
      valid.replace('"src/middleware/"', '"../secrets/"'),
      ['handover.yaml:5:37 context_scope.repos[0].paths[1]: path "../secrets/" climbs above the repo root'],
    ],
    [
      "absolute path",
      valid.replace('"src/middleware/"', '"/etc/passwd"'),
      ['handover.yaml:5:37 context_scope.repos[0].paths[1]: path "/etc/passwd" is absolute; give it relative to the repo root'],
    ],
    [
      "look-alike slash",
      valid.replace('"src/middleware/"', '"src\u2215middleware"'),
      [
        "handover.yaml:5:37 context_scope.repos[0].paths[1]: path \"src\u2215middleware\" contains a Unicode look-alike of '/', '\\' or '.'",
      ],
    ],
    [
      "paths empty",
      valid.replace('paths: ["src/routes/user.ts", "src/middleware/"]', "paths: []"),
      ["handover.yaml:5:14 context_scope.repos[0].paths: is empty: list at least one path, directory or glob"],
    ],
    [
      "paths a string",
      valid.replace('paths: ["src/routes/user.ts", "src/middleware/"]', "paths: src/"),
      ['handover.yaml:5:14 context_scope.repos[0].paths: expected a list of paths, directories or globs, got "src/"'],
    ],
    [
      "repos empty",
      valid.replace(/ {2}repos:\n[\s\S]*?(?= {2}max_files)/, "  repos: []\n"),
      ["handover.yaml:3:10 context_scope.repos: is empty: list at least one repo"],
    ],
    [
      "repo name with a space",
      valid.replace('name: "backend-api"', 'name: "backend api"'),
      [`handover.yaml:4:13 context_scope.repos[0].name: expected a repo name of letters, digits, '.', '_' or '-', got "backend api"`],
    ],
    [
      "primary repo not in scope",
      valid.replace('primary_repo: "backend-api"', 'primary_repo: "backend-apl"'),
      [
        'handover.yaml:10:17 ownership.primary_repo: "backend-apl" is not one of the scope\'s repos (backend-api); did you mean "backend-api"?',
      ],
    ],
    [
      "primary repo far from any",
      valid.replace('primary_repo: "backend-api"', 'primary_repo: "frontend"'),
      [
        'handover.yaml:10:17 ownership.primary_repo: "frontend" is not one of the scope\'s repos (backend-api): name a repo listed in context_scope.repos',
      ],
    ],
    [
      "ownership missing",
      valid.replace(/ownership:[\s\S]*$/, ""),
      ["handover.yaml:1:1 ownership: is required: expected a mapping with primary_repo"],
    ],
    [
      "unknown cross-repo read",
      valid,
      ['handover.yaml:11:30 ownership.allowed_cross_repo_reads[0]: repo "shared-types" is unknown; did you mean "shared-type"?'],
      { knownRepos: ["backend-api", "shared-type"] },
    ],
    [
      "primary repo listed as a cross-repo write",
      valid.replace("allowed_cross_repo_writes: []", 'allowed_cross_repo_writes: ["backend-api"]'),
      ['handover.yaml:12:31 ownership.allowed_cross_repo_writes[0]: "backend-api" is the primary repo, which is always allowed: remove it'],
    ],
    [
      "repo listed twice",
      valid.replace("  max_files: 15", '    - name: "backend-api"\n      paths: ["docs/"]\n  max_files: 15'),
      ['handover.yaml:7:13 context_scope.repos[1].name: repo "backend-api" is listed twice: merge its paths into one entry'],
    ],
    [
      "negative budget",
      `${valid}budgets:\n  generation: -5\n`,
      ["handover.yaml:14:15 budgets.generation: expected a positive integer, got -5"],
    ],
    [
      "usd as text",
      `${valid}budgets:\n  usd: five\n`,
      ['handover.yaml:14:8 budgets.usd: expected a positive amount of US dollars, got "five"'],
    ],
    ["self dependency", `${valid}id: a\ndepends_on: [a]\n`, ['handover.yaml:14:14 depends_on[0]: task "a" cannot depend on itself']],
    [
      "bad change kind",
      `${valid}expected_files:\n  - path: src/a.ts\n    change: rename\n`,
      ['handover.yaml:15:13 expected_files[0].change: expected "create", "modify" or "delete", got "rename"'],
    ],
    [
      "expected file in a read-only repo",
      `${valid}expected_files:\n  - repo: shared-types\n    path: src/a.ts\n`,
      [
        'handover.yaml:14:11 expected_files[0].repo: "shared-types" is not writable by this task: use the primary repo or list it in ownership.allowed_cross_repo_writes',
      ],
    ],
    ["not a mapping", "- just\n- a list\n", ["handover.yaml:1:1 expected a mapping (the task spec), got a list"]],
    ["empty file", "", ["handover.yaml:1:1 is required: expected a mapping (the task spec)"]],
    ["YAML syntax error", 'task: "unterminated\n', ['handover.yaml:2:1 not valid YAML or JSON: Missing closing "quote']],
    ["duplicate key", `${valid}task: again\n`, ['handover.yaml:13:1 key "task" appears twice in this mapping: keep one']],
    [
      "two documents",
      `${valid}---\ntask: another\n`,
      ["handover.yaml:13:1 the file holds more than one YAML document (a --- line): keep one task spec per file"],
    ],
    [
      "seed 000 flattened (context_scope's keys at the top level)",
      "task: t\ncontext_scope:\nrepos:\n  - name: api\n    paths: [src/]\nmax_files: 10\nmax_tokens: 100\nownership:\n  primary_repo: api\n",
      [
        "handover.yaml:2:15 context_scope: expected a mapping with repos, max_files and max_tokens, got null",
        'handover.yaml:3:1 repos: unknown key; it belongs under context_scope: indent it (two spaces) below "context_scope:"',
        'handover.yaml:6:1 max_files: unknown key; it belongs under context_scope: indent it (two spaces) below "context_scope:"',
        'handover.yaml:7:1 max_tokens: unknown key; it belongs under context_scope: indent it (two spaces) below "context_scope:"',
      ],
    ],
  ];

  it.each(malformed)("refuses %s with exact messages", (_name, text, messages, options) => {
    expect(problemsOf(text, options)).toEqual(messages);
  });

  it("lists every problem at once, in source order", () => {
    const text =
      valid.replace("max_files: 15", 'max_files: "fifteen"').replace('primary_repo: "backend-api"', 'primary_repo: "nope"') + "budget: 1\n";
    const error = (() => {
      try {
        parseTaskSpec(text, { source: "tasks/handover.yaml" });
      } catch (caught) {
        return caught as InvalidTaskSpecError;
      }
    })()!;
    expect(error.problems.map((problem) => `${problem.line}:${problem.column} ${problem.path}`)).toEqual([
      "7:14 context_scope.max_files",
      "10:17 ownership.primary_repo",
      "13:1 budget",
    ]);
    expect(error.message.split("\n")[0]).toBe("invalid task spec tasks/handover.yaml (3 problems):");
    expect(BulkheadError.isInstance(error)).toBe(true);
    expect(error.toJSON()).toMatchObject({ code: "INVALID_TASK_SPEC", data: { source: "tasks/handover.yaml" } });
  });

  it("refuses a YAML alias bomb without expanding it", () => {
    const bomb = [
      'a: &a ["x","x","x","x","x","x","x","x","x"]',
      ...Array.from({ length: 8 }, (_, index) => {
        const name = String.fromCharCode(98 + index);
        const previous = String.fromCharCode(97 + index);
        return `${name}: &${name} [${Array(9).fill(`*${previous}`).join(",")}]`;
      }),
      "task: *i",
    ].join("\n");
    expect(problemsOf(bomb)[0]).toMatch(/^handover\.yaml refused: .*alias bomb/);
  });

  it("refuses an oversized spec before parsing it", () => {
    const huge = `task: "${"x".repeat(MAX_TASK_SPEC_BYTES)}"\n`;
    expect(problemsOf(huge)).toEqual([
      `handover.yaml is ${MAX_TASK_SPEC_BYTES + 9} bytes, over the ${MAX_TASK_SPEC_BYTES}-byte limit for a task spec: split the task`,
    ]);
  });

  it("loads YAML and JSON files, naming the file in errors", async () => {
    await using dir = createTempDir();
    dir.write({
      "handover.yaml": seed,
      "handover.json": JSON.stringify(taskSpecToFile(parseTaskSpec(seed))),
      "bad.yaml": valid.replace("max_files: 15", "max_files: many"),
    });
    expect(await loadTaskSpec(join(dir.path, "handover.yaml"))).toEqual(await loadTaskSpec(join(dir.path, "handover.json")));
    await expect(loadTaskSpec(join(dir.path, "bad.yaml"))).rejects.toThrow(
      `${join(dir.path, "bad.yaml")}:7:14 context_scope.max_files: expected a positive integer, got "many"`,
    );
    await expect(loadTaskSpec(join(dir.path, "missing.yaml"))).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    writeFileSync(join(dir.path, "big.yaml"), "x".repeat(MAX_TASK_SPEC_BYTES + 1));
    await expect(loadTaskSpec(join(dir.path, "big.yaml"))).rejects.toMatchObject({ code: "INVALID_TASK_SPEC" });
    // A device reports size 0 and never ends: refused before a byte is read.
    await expect(loadTaskSpec("/dev/zero")).rejects.toThrow("not a regular file");
  });

  it("finds a repeated key among many distinct ones without the quadratic check (uniqueKeys)", () => {
    const keys = Array.from({ length: 8000 }, (_, index) => `  k${index}: 1`);
    const many = `${valid}notes_map:\n${keys.join("\n")}\n`;
    expect(() => parseTaskSpec(many)).toThrow(/unknown key|notes_map/);
    expect(() => parseTaskSpec(`${valid}notes_map:\n${keys.join("\n")}\n  k17: 2\n`)).toThrow('key "k17" appears twice in this mapping');
  });

  it("ships a JSON Schema that describes every key", () => {
    const schema = taskSpecJsonSchema() as {
      properties: Record<string, { properties?: Record<string, unknown> }>;
      required: string[];
      additionalProperties: boolean;
    };
    expect(Object.keys(schema.properties)).toEqual(["task", "id", "depends_on", "context_scope", "ownership", "budgets", "expected_files"]);
    expect(schema.required).toEqual(["task", "context_scope", "ownership"]);
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties.context_scope!.properties!)).toEqual(["repos", "max_files", "max_tokens"]);
    expect(Object.keys(schema.properties.budgets!.properties!)).toEqual([
      "context_read",
      "generation",
      "tool_calls",
      "session_total",
      "usd",
    ]);
  });
});

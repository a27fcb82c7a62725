import { readFileSync } from "node:fs";
import { emptyUsage, usageReportSchema } from "@bulkhead/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { handoverSchema, type HandoverDocument } from "./handover-document.js";
import { InvalidHandoverError } from "./handover-errors.js";
import { parseHandover } from "./parse-handover.js";
import { renderHandover } from "./render-handover.js";

const usage = (input: number, output: number) => ({
  ...emptyUsage(),
  inputTokens: input,
  uncachedInputTokens: input,
  outputTokens: output,
});

/** Seed 000's handover example, as a document. */
const seed: HandoverDocument = {
  id: "handover-20261124T101500000Z-a1b2c3",
  task: { id: "rate-limit", title: "Rate Limiting Implementation" },
  status: "complete",
  done: [
    "Added rate limit middleware to user API routes",
    "Configured Redis-backed rate limiter (100 req/min per user)",
    "Updated route registration in `src/routes/index.ts`",
  ],
  filesChanged: [
    { repo: "backend-api", path: "src/middleware/rateLimit.ts", change: "added", state: "committed" },
    { repo: "backend-api", path: "src/routes/index.ts", change: "modified", state: "committed" },
  ],
  tokens: usageReportSchema.parse({
    taskId: "rate-limit",
    contextReadTokens: 42_000,
    generationTokens: 8_500,
    toolCallTokens: 3_200,
    totalTokens: 53_700,
    usage: usage(45_000, 8_700),
    byRepo: { "backend-api": { usage: usage(45_000, 8_700), totalTokens: 53_700, usd: 0.27 } },
    byOperation: {
      edit: { usage: usage(42_000, 8_500), totalTokens: 50_500 },
      "tool:test": { usage: usage(3_000, 200), totalTokens: 3_200 },
    },
    usd: 0.27,
  }),
  crossRepoImpact: { reposTouched: ["backend-api"], held: [] },
  nextTaskDependencies: ["Frontend needs to handle 429 responses", "Monitoring dashboard should track rate limit hits"],
  gates: [{ name: "typecheck", result: "passed", evidence: "tsc --noEmit: 0 errors" }],
  notes: [],
  createdAt: "2026-11-24T10:15:00.000Z",
  trimmed: [],
};

describe("renderHandover and parseHandover", () => {
  it("reads seed 000's own handover text, verbatim, in lenient mode", () => {
    const text = readFileSync(new URL("../test/fixtures/seed-000-handover.md", import.meta.url), "utf8");
    expect(() => parseHandover(text)).toThrow('missing section "## Files changed"');
    const document = parseHandover(text, { lenient: true });
    expect(document).toMatchObject({
      task: { title: "Rate Limiting Implementation" },
      status: "complete",
      done: [
        "Added rate limit middleware to user API routes",
        "Configured Redis-backed rate limiter (100 req/min per user)",
        "Updated route registration in `src/routes/index.ts`",
      ],
      tokens: { contextReadTokens: 42_000, generationTokens: 8500, toolCallTokens: 3200, totalTokens: 53_700 },
      crossRepoImpact: { reposTouched: ["backend-api"], held: [] },
      nextTaskDependencies: ["Frontend needs to handle 429 responses", "Monitoring dashboard should track rate limit hits"],
      filesChanged: [],
    });
    // Rendered and read back strictly, it is the same document.
    expect(parseHandover(renderHandover(document))).toEqual(document);
  });

  it("renders seed 000's example in its shape", () => {
    const markdown = renderHandover(seed);
    expect(markdown.split("\n").slice(0, 1)).toEqual(["# Handover: Rate Limiting Implementation"]);
    expect(markdown).toContain(
      [
        "## What was done",
        "- Added rate limit middleware to user API routes",
        "- Configured Redis-backed rate limiter (100 req/min per user)",
        "- Updated route registration in `src/routes/index.ts`",
      ].join("\n"),
    );
    expect(markdown).toContain(
      [
        "## Token consumption",
        "- Context read: 42,000 tokens",
        "- Code generation: 8,500 tokens",
        "- Tool calls: 3,200 tokens",
        "- Total: 53,700 tokens",
        "- Cost: $0.27",
      ].join("\n"),
    );
    expect(markdown).toContain(["## Cross-repo impact", "- None. All changes in `backend-api` repo."].join("\n"));
    expect(markdown).toContain(
      ["## Next task dependencies", "- Frontend needs to handle 429 responses", "- Monitoring dashboard should track rate limit hits"].join(
        "\n",
      ),
    );
    expect(parseHandover(markdown)).toEqual(seed);
  });

  it("round-trips held proposals, trimmed lists, consumption and awkward text", () => {
    const document: HandoverDocument = {
      ...seed,
      status: "partial",
      done: ["line one\nline two", "_leading underscore", "back\\slash | pipe", "- dash", "(+3 more)"],
      crossRepoImpact: {
        reposTouched: ["backend-api", "frontend"],
        held: [{ id: "p-abc", repo: "frontend", file: "src/a (b).ts", status: "pending" }],
      },
      gates: [
        { name: "lint: strict", result: "failed", evidence: "2 errors — see: output" },
        { name: "e2e", result: "skipped", evidence: "" },
      ],
      notes: ["_None._"],
      trimmed: [
        { section: "filesChanged", omitted: 12 },
        { section: "notes", omitted: 1 },
      ],
      previousHandoverId: "handover-1",
      consumed: { by: "agent 2", at: "2026-11-24T11:00:00.000Z" },
      tokens: undefined,
    };
    const parsed = parseHandover(renderHandover(document));
    expect(parsed).toEqual(handoverSchema.parse(document));
    expect(renderHandover(document)).toContain("- _(+12 more)_");
    // The tracked task id is free text too: a newline or a backslash in it comes back as written.
    const tracked = { ...seed, tokens: { ...seed.tokens!, taskId: "task\\n one\nline two" } };
    expect(parseHandover(renderHandover(tracked)).tokens?.taskId).toBe("task\\n one\nline two");
    // What the Markdown cannot say exactly is refused up front: files of one repo apart, a repo
    // name with a space, trimmed sections out of order.
    const file = (repo: string, path: string) => ({ repo, path, change: "added" as const, state: "committed" as const });
    const problems = (input: unknown) => handoverSchema.safeParse(input).error?.issues.map((issue) => issue.message);
    expect(problems({ ...document, filesChanged: [file("b", "x"), file("a", "y"), file("b", "z")] })).toEqual([
      "list each repo's files together",
    ]);
    expect(problems({ ...document, crossRepoImpact: { reposTouched: ["front end"], held: [] } })).toEqual([
      "expected a repo name of letters, digits, '.', '_' or '-'",
    ]);
    expect(problems({ ...document, trimmed: [...document.trimmed].reverse() })).toEqual([
      "list each trimmed section once, in document order (done, filesChanged, nextTaskDependencies, gates, notes)",
    ]);
  });

  const text = fc.string({ unit: "grapheme", maxLength: 30 });
  const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/);
  const count = fc.nat({ max: 10_000_000 });
  const usageArbitrary = fc
    .tuple(count, count, count, count, count, count)
    .map(([uncached, read, write5m, write1h, output, reasoning]) => ({
      inputTokens: uncached + read + write5m + write1h,
      uncachedInputTokens: uncached,
      cacheReadTokens: read,
      cacheWrite5mTokens: write5m,
      cacheWrite1hTokens: write1h,
      outputTokens: output + reasoning,
      reasoningTokens: reasoning,
    }));
  // Amounts as the Markdown prints them (to the cent, or 4 significant digits under a cent): the
  // JSON form keeps the exact figure, the Markdown is for people.
  const usd = fc.option(
    fc.oneof(
      fc.integer({ min: 0, max: 100_000 }).map((cents) => cents / 100),
      fc.integer({ min: 1000, max: 9999 }).map((micros) => micros / 1e6),
    ),
    { nil: undefined },
  );
  const breakdown = fc
    .record({ usage: usageArbitrary, totalTokens: count, usd })
    .map(({ usd: cost, ...rest }) => (cost === undefined ? rest : { ...rest, usd: cost }));
  const documentArbitrary = fc.record({
    title: text.filter((value) => value.trim() !== ""),
    taskId: fc.option(name, { nil: undefined }),
    status: fc.constantFrom("complete", "partial", "blocked"),
    done: fc.array(text, { maxLength: 4 }),
    files: fc.array(
      fc.record({
        repo: name,
        path: text.filter((value) => value !== ""),
        change: fc.constantFrom("added", "modified", "deleted"),
        state: fc.constantFrom("committed", "uncommitted"),
      }),
      { maxLength: 5 },
    ),
    tokens: fc.option(
      fc.record({
        contextReadTokens: count,
        generationTokens: count,
        toolCallTokens: count,
        totalTokens: count,
        usage: usageArbitrary,
        byRepo: fc.dictionary(name, breakdown, { maxKeys: 3 }),
        byOperation: fc.dictionary(text, breakdown, { maxKeys: 3 }),
        usd,
        taskId: fc.option(text, { nil: undefined }),
      }),
      { nil: undefined },
    ),
    touched: fc.uniqueArray(name, { maxLength: 3 }),
    held: fc.array(
      fc.record({
        id: fc.stringMatching(/^p-[a-z0-9]{1,8}$/),
        repo: name,
        file: text.filter((value) => value !== ""),
        status: fc.constantFrom("pending", "approved", "rejected"),
      }),
      { maxLength: 2 },
    ),
    deps: fc.array(text, { maxLength: 3 }),
    gates: fc.array(
      fc.record({
        name: text.filter((value) => value !== "" && !/[\r\n]/.test(value)),
        result: fc.constantFrom("passed", "failed", "skipped"),
        evidence: text,
      }),
      { maxLength: 3 },
    ),
    notes: fc.array(text, { maxLength: 3 }),
    trimmed: fc
      .subarray(["done", "filesChanged", "nextTaskDependencies", "gates", "notes"] as const)
      .chain((sections) =>
        fc.tuple(...sections.map((section) => fc.integer({ min: 1, max: 99 }).map((omitted) => ({ section, omitted })))),
      ),
  });

  it("prints money to the cent (4 significant digits under a cent), never a float's tail", () => {
    const tokens = {
      ...seed.tokens!,
      usd: 0.18684299999999998,
      byRepo: { api: { ...seed.tokens!.byRepo["backend-api"]!, usd: 0.0028499999999 } },
    };
    const markdown = renderHandover({ ...seed, tokens });
    expect(markdown).toContain("- Cost: $0.19");
    expect(markdown).toContain("| $0.00285 |");
    expect(markdown).not.toMatch(/\$0\.18684/);
    expect(parseHandover(markdown).tokens?.usd).toBe(0.19);
  });

  it("property: parse(render(x)) equals x", () => {
    fc.assert(
      fc.property(documentArbitrary, (input) => {
        const files = input.files.slice().sort((left, right) => (left.repo < right.repo ? -1 : left.repo > right.repo ? 1 : 0));
        const document = handoverSchema.parse({
          id: "handover-x",
          task: { title: input.title.replace(/[\r\n]/g, " "), ...(input.taskId === undefined ? {} : { id: input.taskId }) },
          status: input.status,
          done: input.done,
          filesChanged: files,
          ...(input.tokens === undefined
            ? {}
            : {
                tokens: Object.fromEntries(
                  Object.entries(input.tokens).filter(([key, value]) => !((key === "usd" || key === "taskId") && value === undefined)),
                ),
              }),
          crossRepoImpact: { reposTouched: input.touched, held: input.held },
          nextTaskDependencies: input.deps,
          gates: input.gates,
          notes: input.notes,
          createdAt: "2026-11-24T10:15:00.000Z",
          trimmed: input.trimmed,
        });
        expect(parseHandover(renderHandover(document))).toEqual(document);
      }),
      { numRuns: 400 },
    );
  });

  it("fuzz: malformed Markdown gives a clear error, never a crash", () => {
    const rendered = renderHandover(seed);
    const mutated = fc
      .tuple(fc.nat({ max: rendered.length }), fc.nat({ max: 40 }), fc.string({ maxLength: 20 }))
      .map(([at, remove, insert]) => rendered.slice(0, at) + insert + rendered.slice(at + remove));
    fc.assert(
      fc.property(fc.oneof(mutated, fc.string({ maxLength: 200 })), (markdown) => {
        try {
          handoverSchema.parse(parseHandover(markdown));
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidHandoverError);
          expect((error as InvalidHandoverError).code).toBe("INVALID_HANDOVER");
        }
      }),
      { numRuns: 2000 },
    );
    expect(() => parseHandover("# Handover: x\n\n## What was done\n")).toThrow('handover.md: missing section "## Files changed"');
    expect(() => parseHandover("hello")).toThrow('handover.md:1: expected the title "# Handover: <task>"');
  });
});

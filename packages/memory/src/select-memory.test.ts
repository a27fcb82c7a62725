import { createTokenCounter } from "@bulkhead/budget";
import { createByteEstimateCounter, parseTaskSpec, resolveScope, type TaskSpec } from "@bulkhead/core";
import { createTempDir, sampleMemoryEntry } from "@bulkhead/test-utils";
import fc from "fast-check";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { MemoryApplies, MemoryEntry } from "./memory-entry.js";
import { renderMemorySection } from "./render-memory-section.js";
import { selectMemory } from "./select-memory.js";

const specFor = (repos: { name: string; paths: string[] }[], maxTokens = 10_000, extra = "") =>
  parseTaskSpec(
    `task: t\ncontext_scope:\n  repos: ${JSON.stringify(repos)}\n  max_files: 100\n  max_tokens: ${maxTokens}\nownership:\n  primary_repo: ${repos[0]!.name}\n${extra}`,
  );

const accepted = (id: string, applies: MemoryApplies, overrides: Partial<MemoryEntry> = {}) =>
  sampleMemoryEntry(id, {
    status: "accepted",
    acceptedBy: "alice",
    applies,
    kind: "convention",
    why: undefined,
    decidedBy: undefined,
    ...overrides,
  });

describe("selectMemory", () => {
  it("among equals in rank, update and use, the more recently used entry goes first", async () => {
    const spec = specFor([{ name: "api", paths: ["src"] }]);
    const updatedAt = "2026-11-01T00:00:00.000Z";
    const entries = [accepted("m-aaa", "workspace", { updatedAt }), accepted("m-bbb", "workspace", { updatedAt })];
    const usage = {
      "m-aaa": { uses: 2, lastUsedAt: "2026-11-02T00:00:00.000Z" },
      "m-bbb": { uses: 2, lastUsedAt: "2026-11-03T00:00:00.000Z" },
    };
    expect((await selectMemory({ entries, usage, spec })).selected.map((item) => item.entry.id)).toEqual(["m-bbb", "m-aaa"]);
  });

  it("an entry on a directory that holds the task's scope applies to it", async () => {
    const spec = specFor([{ name: "api", paths: ["src/routes"] }]);
    const broad = accepted("m-broad", [{ repo: "api", paths: ["src"] }]);
    const elsewhere = accepted("m-elsewhere", [{ repo: "api", paths: ["docs"] }]);
    const selection = await selectMemory({ entries: [broad, elsewhere], spec });
    expect(selection.selected.map((item) => [item.entry.id, item.specificity])).toEqual([["m-broad", "path"]]);
  });

  it("ranks a deeper path first by its directories, not by its length", async () => {
    const spec = specFor([{ name: "api", paths: ["src/a/b", "source-files"] }]);
    const deep = accepted("m-deep", [{ repo: "api", paths: ["src/a/b"] }]);
    const long = accepted("m-long", [{ repo: "api", paths: ["source-files"] }]);
    expect((await selectMemory({ entries: [long, deep], spec })).selected.map((item) => item.entry.id)).toEqual(["m-deep", "m-long"]);
  });

  it("ranks an entry on a directory before one on the repository's root path", async () => {
    const spec = specFor([{ name: "api", paths: ["src"] }]);
    const root = accepted("m-root", [{ repo: "api", paths: ["."] }]);
    const directory = accepted("m-src", [{ repo: "api", paths: ["src"] }]);
    const selection = await selectMemory({ entries: [root, directory], spec });
    expect(selection.selected.map((item) => item.entry.id)).toEqual(["m-src", "m-root"]);
  });

  it("carries a workspace learning from repo A to a task scoped only to repo B; repo A's own stays in A", async () => {
    const learnedInA = accepted("m-from-a-workspace", "workspace", {
      kind: "learning",
      learning: "failure",
      foundIn: { repo: "repo-a", path: "ci/Dockerfile" },
      title: "Acceptance checks must be token-specific, not category-level",
    });
    const onlyA = accepted("m-only-a", [{ repo: "repo-a", paths: [] }]);
    const onlyB = accepted("m-only-b", [{ repo: "repo-b", paths: ["src"] }]);
    const spec = specFor([{ name: "repo-b", paths: ["src"] }]);
    const selection = await selectMemory({ entries: [onlyA, learnedInA, onlyB], spec });
    expect(selection.selected.map((item) => [item.entry.id, item.specificity])).toEqual([
      ["m-only-b", "path"],
      ["m-from-a-workspace", "workspace"],
    ]);
    expect(renderMemorySection(selection)).toContain("[learning, failure] Acceptance checks must be token-specific");
    expect(renderMemorySection(selection)).not.toContain("m-only-a");
  });

  it("never selects proposed, dropped or expired entries", async () => {
    const spec = specFor([{ name: "api", paths: ["src"] }]);
    const now = new Date("2026-12-01T12:00:00.000Z");
    const entries = [
      accepted("m-live", "workspace", { expiresAt: "2026-12-02T00:00:00Z" }),
      accepted("m-expired", "workspace", { expiresAt: "2026-12-01T12:00:00.000Z" }),
      accepted("m-expired-other-precision", "workspace", { expiresAt: "2026-12-01T11:59:59Z" }),
      sampleMemoryEntry("m-proposed", { applies: "workspace" }),
      accepted("m-dropped", "workspace", { status: "dropped", droppedBy: "bob" }),
    ];
    const selection = await selectMemory({ entries, spec, now });
    expect(selection.selected.map((item) => item.entry.id)).toEqual(["m-live"]);
    expect(selection.applicable).toBe(1);
  });

  it("selects again over the same list after an entry in it is replaced or added: the listing index is never stale", async () => {
    const spec = specFor([{ name: "api", paths: ["src"] }]);
    const entries = [accepted("m-first", "workspace"), sampleMemoryEntry("m-second", { applies: "workspace" })];
    expect((await selectMemory({ entries, spec })).selected.map((item) => item.entry.id)).toEqual(["m-first"]);
    entries[1] = accepted("m-second", [{ repo: "api", paths: [] }]);
    expect((await selectMemory({ entries, spec })).selected.map((item) => item.entry.id)).toEqual(["m-second", "m-first"]);
    entries.push(accepted("m-third", [{ repo: "api", paths: ["src"] }], { updatedAt: "2026-12-01T09:00:00.000Z" }));
    entries.splice(0, 1);
    expect((await selectMemory({ entries, spec })).selected.map((item) => item.entry.id)).toEqual(["m-third", "m-second"]);
    entries[0] = accepted("m-fourth", "workspace");
    expect((await selectMemory({ entries, spec })).selected.map((item) => item.entry.id)).toEqual(["m-third", "m-fourth"]);
  });

  it("matches paths against the resolved scope, and takes the share from what the scope leaves of the context budget", async () => {
    await using dir = createTempDir();
    dir.write({
      "api/src/middleware/rateLimit.ts": "x".repeat(4000),
      "api/src/routes/user.ts": "export {};\n",
      "api/docs/adr.md": "# ADR\n",
    });
    const spec = specFor([{ name: "api", paths: ["src/**/*.ts"] }], 2000);
    const scope = await resolveScope(spec, { repos: { api: join(dir.path, "api") }, cache: false });
    const entries = [
      accepted("m-file", [{ repo: "api", paths: ["src/middleware/rateLimit.ts"] }], { updatedAt: "2026-11-01T00:00:00.000Z" }),
      accepted("m-dir", [{ repo: "api", paths: ["src"] }], { updatedAt: "2026-12-01T00:00:00.000Z" }),
      accepted("m-docs", [{ repo: "api", paths: ["docs"] }]),
      accepted("m-repo", [{ repo: "api", paths: [] }]),
      accepted("m-two-repos", [
        { repo: "api", paths: [] },
        { repo: "web", paths: [] },
      ]),
    ];
    const wide = await selectMemory({ entries, spec, scope, share: 1 });
    // Deeper paths first, whatever their age; a path outside what the task sees does not apply.
    expect(wide.selected.map((item) => item.entry.id)).toEqual(["m-file", "m-dir", "m-repo", "m-two-repos"]);
    expect(wide.scopeTokens).toBe(scope.totals.tokens);
    expect(wide.budget).toBe(2000 - scope.totals.tokens);
    expect(wide.tokens + scope.totals.tokens).toBeLessThanOrEqual(2000);
    // A tight share: what does not fit is listed by id, in rank order.
    const justOne = createByteEstimateCounter().count(renderMemorySection({ selected: wide.selected.slice(0, 1) })) as number;
    const tight = await selectMemory({ entries, spec, scope, maxTokens: justOne + 1 });
    expect(tight.selected.map((item) => item.entry.id)).toEqual(["m-file"]);
    expect(tight.notFitted).toEqual(["m-dir", "m-repo", "m-two-repos"]);
    expect(tight.tokens).toBe(justOne);
  });

  it("stops rendering once 32 entries did not fit: the rest are listed by id, never counted", async () => {
    const spec = specFor([{ name: "api", paths: ["src"] }]);
    const entries = Array.from({ length: 300 }, (_, index) =>
      accepted(`m-${String(index).padStart(4, "0")}`, "workspace", { title: `Rule number ${index}`, body: "x".repeat(index % 7) }),
    );
    const texts: string[] = [];
    // A counter of its own name, so nothing is cached from other tests: every count reaches it.
    const counter = {
      name: "counting-bytes-fill-test",
      estimated: true,
      count: (text: string) => (texts.push(text), Math.ceil(text.length / 4)),
    };
    const selection = await selectMemory({ entries, spec, counter, maxTokens: 200 });
    expect(selection.selected.length).toBeGreaterThan(0);
    expect(selection.selected.length + selection.notFitted.length).toBe(300);
    const blocks = texts.filter((text) => text.startsWith("- ["));
    // Every selected block, then at most 32 that missed; plus the header and the whole section.
    expect(blocks.length).toBeLessThanOrEqual(selection.selected.length + 32);
    expect(texts.length).toBe(blocks.length + 2);
    expect(selection.tokens).toBeLessThanOrEqual(200);
    // Still in rank order, and the same answer when selected again (through the listing index).
    expect(await selectMemory({ entries, spec, counter, maxTokens: 200 })).toEqual(selection);
  });

  it("orders by use among entries of the same rank and age, in any listing order", async () => {
    const spec = specFor([{ name: "api", paths: ["src"] }]);
    const updatedAt = "2026-11-01T00:00:00.000Z";
    const entries = ["m-aaa", "m-bbb", "m-ccc", "m-ddd"].map((id) => accepted(id, "workspace", { updatedAt }));
    entries.push(
      accepted("m-eee", "workspace", { updatedAt: "2026-11-02T00:00:00.000Z" }),
      accepted("m-fff", [{ repo: "api", paths: [] }], { updatedAt }),
    );
    const usage = { "m-ccc": { uses: 3 }, "m-bbb": { uses: 3, lastUsedAt: "2026-11-05T00:00:00.000Z" }, "m-ddd": { uses: 1 } };
    const expected = ["m-fff", "m-eee", "m-bbb", "m-ccc", "m-ddd", "m-aaa"];
    expect((await selectMemory({ entries, usage, spec })).selected.map((item) => item.entry.id)).toEqual(expected);
    expect((await selectMemory({ entries: [...entries].reverse(), usage, spec })).selected.map((item) => item.entry.id)).toEqual(expected);
  });

  it("validates its options", async () => {
    await expect(selectMemory({ entries: [], spec: {} as TaskSpec })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await expect(selectMemory({ entries: [], spec: specFor([{ name: "api", paths: ["src"] }]), share: 2 })).rejects.toThrow("options");
  });

  describe("properties", () => {
    const repos = ["api", "web", "ops"];
    const paths = ["src", "src/middleware", "src/middleware/rateLimit.ts", "docs", "lib"];
    const applies: fc.Arbitrary<MemoryApplies> = fc.oneof(
      fc.constant("workspace" as const),
      fc.uniqueArray(fc.record({ repo: fc.constantFrom(...repos), paths: fc.uniqueArray(fc.constantFrom(...paths), { maxLength: 2 }) }), {
        minLength: 1,
        maxLength: 2,
        selector: (target) => target.repo,
      }),
    );
    const days = ["2026-11-01T00:00:00.000Z", "2026-11-15T00:00:00.000Z", "2026-12-01T00:00:00.000Z"];
    const entry = fc.record({
      applies,
      status: fc.constantFrom("accepted", "accepted", "proposed", "dropped") as fc.Arbitrary<MemoryEntry["status"]>,
      updatedAt: fc.constantFrom(...days),
      expired: fc.boolean(),
      title: fc.string({ minLength: 1, maxLength: 60 }).filter((text) => text.trim() !== "" && !/[\r\n\u0085\u2028\u2029]/.test(text)),
      body: fc.string({ maxLength: 300 }),
    });
    const entries = fc.array(entry, { maxLength: 25 }).map((list) =>
      list.map((item, index) =>
        accepted(`m-${String(index).padStart(4, "0")}`, item.applies, {
          status: item.status,
          updatedAt: item.updatedAt,
          title: item.title.trim(),
          body: item.body.replaceAll("\r", "").trim(),
          ...(item.expired ? { expiresAt: "2026-11-30T00:00:00.000Z" } : {}),
        }),
      ),
    );
    const spec = specFor([
      { name: "api", paths: ["src/middleware"] },
      { name: "web", paths: ["src"] },
    ]);
    const now = new Date("2026-12-01T12:00:00.000Z");
    const counter = createTokenCounter({ encoding: "o200k_base" });
    afterAll(() => counter[Symbol.dispose]());

    it("never exceeds its token share, counted on the whole rendered section", async () => {
      await fc.assert(
        fc.asyncProperty(entries, fc.integer({ min: 0, max: 600 }), async (list, maxTokens) => {
          const selection = await selectMemory({ entries: list, spec, counter, maxTokens, now });
          const section = renderMemorySection(selection);
          expect(selection.tokens).toBe(section === "" ? 0 : counter.count(section));
          expect(selection.tokens).toBeLessThanOrEqual(maxTokens);
          // Every applicable entry is either selected or listed as not fitted; nothing else is.
          expect(selection.selected.length + selection.notFitted.length).toBe(selection.applicable);
          for (const item of selection.selected) {
            expect(item.entry.status).toBe("accepted");
            expect(item.entry.expiresAt).toBeUndefined();
          }
        }),
        { numRuns: 150 },
      );
    });

    it("never exceeds its share over larger listings, where fitting stops after 32 misses", async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(entry, { minLength: 40, maxLength: 120 }), fc.integer({ min: 0, max: 400 }), async (items, maxTokens) => {
          const list = items.map((item, index) =>
            accepted(`m-${String(index).padStart(4, "0")}`, item.applies, {
              status: item.status,
              updatedAt: item.updatedAt,
              title: item.title.trim() || "t",
              body: item.body.replaceAll("\r", "").trim(),
            }),
          );
          const selection = await selectMemory({ entries: list, spec, counter, maxTokens, now });
          const section = renderMemorySection(selection);
          expect(selection.tokens).toBe(section === "" ? 0 : counter.count(section));
          expect(selection.tokens).toBeLessThanOrEqual(maxTokens);
          expect(selection.selected.length + selection.notFitted.length).toBe(selection.applicable);
        }),
        { numRuns: 40 },
      );
    });

    it("is deterministic for the same store, in whatever order the store lists it", async () => {
      await fc.assert(
        fc.asyncProperty(entries, fc.integer({ min: 0, max: 600 }), fc.infiniteStream(fc.nat()), async (list, maxTokens, randoms) => {
          const shuffled = list
            .map((item) => ({ item, key: randoms.next().value as number }))
            .sort((a, b) => a.key - b.key)
            .map(({ item }) => item);
          // Use counts on some entries: ties of rank and age are then ordered by use.
          const usage = Object.fromEntries(
            list
              .filter((_, index) => index % 3 === 0)
              .map((item, index) => [item.id, { uses: index % 2, ...(index % 4 === 0 ? { lastUsedAt: "2026-11-20T00:00:00.000Z" } : {}) }]),
          );
          const first = await selectMemory({ entries: list, usage, spec, counter, maxTokens, now });
          const second = await selectMemory({ entries: shuffled, usage, spec, counter, maxTokens, now });
          expect(second).toEqual(first);
          expect(renderMemorySection(second)).toBe(renderMemorySection(first));
          // Selected again over the same listings: through the listing index, the same answer.
          expect(await selectMemory({ entries: list, usage, spec, counter, maxTokens, now })).toEqual(first);
          expect(await selectMemory({ entries: shuffled, usage, spec, counter, maxTokens, now })).toEqual(first);
        }),
        { numRuns: 100 },
      );
    });

    it("always prefers a path-specific entry over a workspace-wide one of the same age", async () => {
      await fc.assert(
        fc.asyncProperty(
          entries,
          fc.integer({ min: 0, max: 600 }),
          fc.constantFrom(...days),
          fc.string({ maxLength: 200 }),
          async (list, maxTokens, day, text) => {
            // The same text in both, so neither is cheaper: only specificity can decide.
            const body = text.replaceAll("\r", "").trim();
            const specific = accepted("m-path-entry", [{ repo: "api", paths: ["src/middleware"] }], {
              updatedAt: day,
              title: "Same rule",
              body,
            });
            const wide = accepted("m-wide-entry", "workspace", { updatedAt: day, title: "Same rule", body });
            const selection = await selectMemory({ entries: [wide, ...list, specific], spec, counter, maxTokens, now });
            const ids = selection.selected.map((item) => item.entry.id);
            if (ids.includes("m-wide-entry")) expect(ids).toContain("m-path-entry");
            // Stronger: when any workspace-wide entry is in, every applicable path-specific one is.
            if (selection.selected.some((item) => item.specificity === "workspace")) {
              const all = await selectMemory({ entries: [wide, ...list, specific], spec, counter, maxTokens: 1_000_000, now });
              for (const item of all.selected.filter((candidate) => candidate.specificity === "path")) expect(ids).toContain(item.entry.id);
            }
            if (ids.includes("m-path-entry") && ids.includes("m-wide-entry"))
              expect(ids.indexOf("m-path-entry")).toBeLessThan(ids.indexOf("m-wide-entry"));
            // And the section is ordered most specific first.
            const levels = selection.selected.map((item) => ({ path: 3, repo: 2, workspace: 1 })[item.specificity]);
            expect(levels).toEqual([...levels].sort((a, b) => b - a));
          },
        ),
        { numRuns: 150 },
      );
    });
  });
});

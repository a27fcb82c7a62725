import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { suggestNarrowing } from "./suggest-narrowing.js";

const file = (path: string, tokens: number) => ({ repo: "ai", path, tokens });

describe("suggestNarrowing", () => {
  it("advises the lightest single removal that fits, never the ancestor chain", () => {
    const files = [
      file("packages/ai/src/core/a.ts", 100),
      file("packages/ai/src/core/b.ts", 100),
      file("packages/ai/src/providers/openai.ts", 5_000),
      file("packages/ai/src/providers/anthropic.ts", 4_000),
      file("packages/ai/src/util/big.ts", 3_000),
    ];
    const advice = suggestNarrowing(files, { maxTokens: 6_000 });
    // 12,200 tokens, 6,200 over: providers (9,000) suffices alone; packages, packages/ai and packages/ai/src hold everything.
    expect(advice).toEqual({
      remove: [{ repo: "ai", path: "packages/ai/src/providers", kind: "directory", files: 2, tokens: 9_000 }],
      after: { files: 3, tokens: 3_200 },
      fits: true,
    });
    // A smaller excess: the lightest removal that covers it (one file), not the biggest directory.
    expect(suggestNarrowing(files, { maxTokens: 10_000 }).remove).toEqual([
      { repo: "ai", path: "packages/ai/src/util", kind: "directory", files: 1, tokens: 3_000 },
    ]);
    expect(suggestNarrowing(files, { maxTokens: 20_000 })).toEqual({ remove: [], after: { files: 5, tokens: 12_200 }, fits: true });
  });

  it("combines non-overlapping parts when no single one suffices, and counts files too", () => {
    const files = [file("a/1.ts", 10), file("a/2.ts", 10), file("b/1.ts", 10), file("b/2.ts", 10), file("c/1.ts", 10), file("c/2.ts", 10)];
    const advice = suggestNarrowing(files, { maxFiles: 2 });
    expect(advice.remove.map((step) => step.path)).toEqual(["a", "b"]);
    expect(advice.after).toEqual({ files: 2, tokens: 20 });
    expect(advice.fits).toBe(true);
  });

  it("property: the advice fits whenever it says so, and its removals never overlap", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.constantFrom("a", "a/b", "a/b/c", "d", "d/e"), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 1, max: 500 })),
          {
            minLength: 1,
            maxLength: 60,
          },
        ),
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 1, max: 20_000 }),
        (entries, maxFiles, maxTokens) => {
          const files = [
            ...new Map(entries.map(([dir, name, tokens]) => [`${dir}/${name}.ts`, file(`${dir}/${name}.ts`, tokens)])).values(),
          ];
          const advice = suggestNarrowing(files, { maxFiles, maxTokens });
          const removed = files.filter((entry) =>
            advice.remove.some((step) => entry.path === step.path || entry.path.startsWith(`${step.path}/`)),
          );
          expect(advice.after.files).toBe(files.length - removed.length);
          if (advice.fits) {
            expect(advice.after.files).toBeLessThanOrEqual(maxFiles);
            expect(advice.after.tokens).toBeLessThanOrEqual(maxTokens);
          }
          for (const step of advice.remove) expect(step.files).toBeLessThan(files.length);
        },
      ),
    );
  });
});

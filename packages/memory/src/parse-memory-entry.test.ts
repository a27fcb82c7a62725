import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { sampleMemoryEntry } from "@bulkhead/test-utils";
import { BulkheadError } from "@bulkhead/core";
import { InvalidMemoryEntryError } from "./memory-errors.js";
import type { MemoryEntry } from "./memory-entry.js";
import { parseMemoryEntry, renderMemoryEntry } from "./parse-memory-entry.js";

describe("parseMemoryEntry and renderMemoryEntry", () => {
  it("round-trips every kind of entry (property)", () => {
    const oneLine = fc
      .string({ unit: "grapheme", minLength: 1, maxLength: 80 })
      .map((text) => text.replace(/[\r\n\u0085\u2028\u2029]/g, " ").trim())
      .filter((text) => text !== "");
    const time = fc
      .date({ min: new Date("2020-01-01"), max: new Date("2030-01-01"), noInvalidDate: true })
      .map((date) => date.toISOString());
    const applies = fc.oneof(
      fc.constant("workspace" as const),
      fc.uniqueArray(
        fc.record({
          repo: fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/),
          paths: fc.uniqueArray(fc.stringMatching(/^[a-z]{1,6}(\/[a-z]{1,6}){0,2}$/), { maxLength: 3 }),
        }),
        { minLength: 1, maxLength: 3, selector: (target) => target.repo },
      ),
    );
    const entry: fc.Arbitrary<MemoryEntry> = fc
      .record({
        kind: fc.constantFrom("decision", "learning", "convention"),
        status: fc.constantFrom("proposed", "accepted", "dropped"),
        title: oneLine,
        body: fc.string({ unit: "grapheme", maxLength: 300 }).map((text) => text.replaceAll("\r", "").trim()),
        applies,
        why: fc.option(oneLine, { nil: undefined }),
        learning: fc.option(fc.constantFrom("pattern", "failure"), { nil: undefined }),
        createdAt: time,
        expiresAt: fc.option(time, { nil: undefined }),
        by: fc.option(oneLine, { nil: undefined }),
      })
      .map((value) => {
        const result: MemoryEntry = {
          id: "m-0123456789ab",
          kind: value.kind,
          status: value.status,
          title: value.title,
          body: value.body,
          applies: value.applies,
          source: { kind: "handover", ref: "handover-1", ...(value.by === undefined ? {} : { by: value.by }) },
          createdAt: value.createdAt,
          updatedAt: value.createdAt,
          ...(value.expiresAt === undefined ? {} : { expiresAt: value.expiresAt }),
        };
        if (value.kind === "decision" && value.why !== undefined) result.why = value.why;
        if (value.kind === "learning" && value.learning !== undefined) result.learning = value.learning;
        return result;
      });
    fc.assert(
      fc.property(entry, (value) => {
        expect(parseMemoryEntry(renderMemoryEntry(value))).toEqual(value);
      }),
      { numRuns: 300 },
    );
  });

  it("names the line of each problem, and refuses what does not belong", () => {
    const text = renderMemoryEntry(sampleMemoryEntry("m-abc", { kind: "convention", why: undefined, decidedBy: undefined }));
    expect(() => parseMemoryEntry(text.replace("kind: convention", "kind: convention\nwhy: because"), { source: "m-abc.md" })).toThrow(
      "m-abc.md:4:1 why: belongs to a decision, not a convention",
    );
    expect(() => parseMemoryEntry(text.replace("status: proposed", "status: maybe"), { source: "m-abc.md" })).toThrow(
      'm-abc.md:4:9 status: expected "proposed", "accepted" or "dropped"',
    );
    expect(() => parseMemoryEntry(`---\nid: m-abc\n---\n${"x".repeat(9000)}`)).toThrow("the body is 9000 characters, over 8000");
    expect(() => parseMemoryEntry("no front matter")).toThrow('entry.md:1:1 expected front matter: the first line must be "---"');
    expect(() => parseMemoryEntry("---\na: &a [1]\nb: [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n---\n")).toThrow(InvalidMemoryEntryError);
  });

  it("never crashes on arbitrary text: it parses or throws an InvalidMemoryEntryError (fuzz)", () => {
    const valid = renderMemoryEntry(sampleMemoryEntry("m-abc"));
    const mutated = fc
      .tuple(fc.nat({ max: valid.length }), fc.nat({ max: 20 }), fc.string({ maxLength: 12 }))
      .map(([at, remove, insert]) => valid.slice(0, at) + insert + valid.slice(at + remove));
    fc.assert(
      fc.property(
        fc.oneof(
          mutated,
          fc.string({ maxLength: 200 }),
          fc.string({ maxLength: 200 }).map((text) => `---\n${text}\n---\n`),
        ),
        (text) => {
          try {
            parseMemoryEntry(text);
          } catch (error) {
            expect(BulkheadError.isInstance(error) && error.code).toBe("INVALID_MEMORY_ENTRY");
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it("reads in time linear in the size: a file of many fences and lines is bounded by the byte limit", () => {
    expect(() => parseMemoryEntry(`---\n${"---x\n".repeat(4000)}`)).toThrow("over the 16384-byte limit");
    expect(() => parseMemoryEntry(`---\n${"---x\n".repeat(3000)}`)).toThrow("not closed");
  });
});

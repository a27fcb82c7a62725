import { sampleMemoryEntry } from "@bulkhead/test-utils";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { MemoryApplies, MemoryEntry } from "./memory-entry.js";
import { describeApplies, renderMemoryBlock } from "./render-memory-section.js";
import type { MemorySpecificity } from "./select-memory.js";

/** The block as the format defines it, written the plain way: the one-scan renderer must agree with it. */
function reference(entry: MemoryEntry, specificity: MemorySpecificity): string {
  const kind = entry.kind === "learning" && entry.learning ? `learning, ${entry.learning}` : entry.kind;
  const why = entry.why === undefined ? "" : ` Why: ${entry.why}`;
  const where =
    specificity === "workspace" || entry.applies === "workspace"
      ? "workspace"
      : entry.applies.map((target) => (target.paths.length === 0 ? target.repo : `${target.repo}: ${target.paths.join(", ")}`)).join("; ");
  const lines = [`- [${kind}] ${entry.title}${why} (${where}; ${entry.id})`];
  if (entry.body !== "") for (const line of entry.body.split("\n")) lines.push(line.trim() === "" ? "" : `  ${line}`);
  return `${lines.join("\n")}\n`;
}

describe("renderMemoryBlock", () => {
  it("renders a bullet, then the body indented line by line (blank lines left empty)", () => {
    const entry = sampleMemoryEntry("m-render", {
      kind: "convention",
      why: undefined,
      title: "Errors carry a code",
      body: "First\n\n  \nlast\n",
      applies: [
        { repo: "api", paths: ["src", "lib"] },
        { repo: "web", paths: [] },
      ],
    });
    expect(renderMemoryBlock(entry, "path")).toBe(
      "- [convention] Errors carry a code (api: src, lib; web; m-render)\n  First\n\n\n  last\n\n",
    );
    expect(renderMemoryBlock(entry, "workspace")).toBe("- [convention] Errors carry a code (workspace; m-render)\n  First\n\n\n  last\n\n");
    expect(describeApplies("workspace")).toBe("workspace");
  });

  it("agrees with the plain split-and-join rendering for any body and target", () => {
    const applies: fc.Arbitrary<MemoryApplies> = fc.oneof(
      fc.constant("workspace" as const),
      fc.array(fc.record({ repo: fc.constantFrom("api", "web"), paths: fc.array(fc.constantFrom("src", "lib/a.ts"), { maxLength: 2 }) }), {
        minLength: 1,
        maxLength: 3,
      }),
    );
    fc.assert(
      fc.property(
        fc.string({ maxLength: 120, unit: fc.constantFrom("a", " ", "\n", "\t", "é", "-") }),
        applies,
        fc.constantFrom<MemorySpecificity>("path", "repo", "workspace"),
        (body, target, specificity) => {
          const entry = sampleMemoryEntry("m-prop", { body, applies: target });
          expect(renderMemoryBlock(entry, specificity)).toBe(reference(entry, specificity));
        },
      ),
      { numRuns: 300 },
    );
  });
});

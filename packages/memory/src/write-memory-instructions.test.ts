import { chmodSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTempDir, sampleMemoryEntry } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { renderMemorySection } from "./render-memory-section.js";
import { GENERATED_MEMORY_MARKER, writeMemoryInstructions } from "./write-memory-instructions.js";

const selection = { selected: [{ entry: sampleMemoryEntry("m-abc", { status: "accepted" }), tokens: 10, specificity: "path" as const }] };

describe("writeMemoryInstructions", () => {
  it("writes generated, read-only CLAUDE.md and AGENTS.md, and rewrites only its own files", async () => {
    await using dir = createTempDir();
    const first = await writeMemoryInstructions({ directory: dir.path, selection });
    expect(first).toEqual({ written: [join(dir.path, "CLAUDE.md"), join(dir.path, "AGENTS.md")], skipped: [] });
    const text = readFileSync(join(dir.path, "CLAUDE.md"), "utf8");
    expect(text).toBe(`${GENERATED_MEMORY_MARKER}\n\n${renderMemorySection(selection)}`);
    expect(statSync(join(dir.path, "AGENTS.md")).mode & 0o777).toBe(0o444);
    // Its own file is replaced (even read-only); with nothing selected it says so.
    await writeMemoryInstructions({ directory: dir.path, selection: { selected: [] } });
    expect(readFileSync(join(dir.path, "CLAUDE.md"), "utf8")).toBe(
      `${GENERATED_MEMORY_MARKER}\n\nNo project memory applies to this task.\n`,
    );
  });

  it("never edits the user's file, never follows a planted link", async () => {
    await using dir = createTempDir();
    writeFileSync(join(dir.path, "CLAUDE.md"), "# mine\n");
    mkdirSync(join(dir.path, "outside"));
    writeFileSync(join(dir.path, "outside", "target.md"), `${GENERATED_MEMORY_MARKER}\nold\n`);
    symlinkSync(join(dir.path, "outside", "target.md"), join(dir.path, "AGENTS.md"));
    const result = await writeMemoryInstructions({ directory: dir.path, selection });
    expect(result.written).toEqual([]);
    expect(result.skipped.map((skip) => skip.reason)).toEqual([
      expect.stringContaining("was not written by bulkhead"),
      expect.stringContaining("not a regular file"),
    ]);
    expect(readFileSync(join(dir.path, "CLAUDE.md"), "utf8")).toBe("# mine\n");
    expect(readFileSync(join(dir.path, "outside", "target.md"), "utf8")).toBe(`${GENERATED_MEMORY_MARKER}\nold\n`);
    chmodSync(join(dir.path, "CLAUDE.md"), 0o644);
  });

  it("checks its options", async () => {
    await using dir = createTempDir();
    await expect(writeMemoryInstructions({ directory: dir.path, selection, files: ["../escape.md"] })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    await expect(writeMemoryInstructions({ directory: join(dir.path, "missing"), selection })).rejects.toThrow("is not a directory");
  });
});

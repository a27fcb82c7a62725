import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTempDir, describeMemoryStore, sampleMemoryEntry } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { createFileMemoryStore, createVolatileMemoryStore } from "./memory-store.js";
import { renderMemoryEntry } from "./parse-memory-entry.js";

describeMemoryStore("volatile", async () => ({ store: createVolatileMemoryStore(), [Symbol.asyncDispose]: async () => undefined }));
describeMemoryStore("files", async () => {
  const dir = createTempDir("bulkhead-memory-");
  return { store: createFileMemoryStore(join(dir.path, "memory")), [Symbol.asyncDispose]: async () => dir.remove() };
});

describe("createFileMemoryStore", () => {
  it("keeps one reviewable Markdown file per entry, and use counts in a separate file", async () => {
    await using dir = createTempDir("bulkhead-memory-");
    const store = createFileMemoryStore(dir.path);
    await store.create(sampleMemoryEntry("m-abc", { body: "Redis holds the counters.\n\nSee the ADR." }));
    const text = readFileSync(join(dir.path, "m-abc.md"), "utf8");
    expect(text).toBe(
      [
        "---",
        "id: m-abc",
        "kind: decision",
        "status: proposed",
        "title: Decision m-abc",
        "applies:",
        "  - repo: api",
        "    paths:",
        "      - src/middleware",
        "why: it keeps limits shared",
        "decided_by: agent@s1",
        "source:",
        "  kind: handover",
        "  ref: handover-1",
        "  by: agent@s1",
        "created: 2026-12-01T10:00:00.000Z",
        "updated: 2026-12-01T10:00:00.000Z",
        "---",
        "",
        "Redis holds the counters.",
        "",
        "See the ADR.",
        "",
      ].join("\n"),
    );
    await store.recordUse(["m-abc"], "2026-12-01T11:00:00.000Z");
    expect(readFileSync(join(dir.path, "m-abc.md"), "utf8")).toBe(text);
    expect(JSON.parse(readFileSync(join(dir.path, ".usage.json"), "utf8"))).toEqual({
      "m-abc": { uses: 1, last_used_at: "2026-12-01T11:00:00.000Z" },
    });
  });

  it("reports a malformed entry file by path and line and skips it; the good ones still list", async () => {
    await using dir = createTempDir("bulkhead-memory-");
    const store = createFileMemoryStore(dir.path);
    await store.create(sampleMemoryEntry("m-good", { status: "accepted", acceptedBy: "alice" }));
    const bad = renderMemoryEntry(sampleMemoryEntry("m-bad")).replace("  - repo: api\n", "  - repo: not a repo\n");
    writeFileSync(join(dir.path, "m-bad.md"), bad);
    writeFileSync(join(dir.path, "m-unknown.md"), renderMemoryEntry(sampleMemoryEntry("m-unknown")).replace("why:", "wyh:"));
    writeFileSync(join(dir.path, "m-fence.md"), "---\nid: m-fence\n");
    writeFileSync(join(dir.path, "m-yaml.md"), "---\nid: [unclosed\n---\n");
    writeFileSync(join(dir.path, "m-named.md"), renderMemoryEntry(sampleMemoryEntry("m-other")));
    writeFileSync(join(dir.path, "m-huge.md"), `---\n${"x".repeat(20_000)}\n---\n`);
    mkdirSync(join(dir.path, "elsewhere"));
    writeFileSync(join(dir.path, "elsewhere", "m-link.md"), renderMemoryEntry(sampleMemoryEntry("m-link")));
    symlinkSync(join(dir.path, "elsewhere", "m-link.md"), join(dir.path, "m-link.md"));
    writeFileSync(join(dir.path, "README.md"), "# Project memory\n");

    const { entries, problems } = await store.list();
    expect(entries.map((entry) => entry.id)).toEqual(["m-good"]);
    const byFile = Object.fromEntries(problems.map((problem) => [problem.source.slice(dir.path.length + 1), problem]));
    expect(Object.keys(byFile).sort()).toEqual([
      "m-bad.md",
      "m-fence.md",
      "m-huge.md",
      "m-link.md",
      "m-named.md",
      "m-unknown.md",
      "m-yaml.md",
    ]);
    expect(byFile["m-bad.md"]).toMatchObject({
      line: 7,
      column: 11,
      path: "applies[0].repo",
      message: expect.stringContaining("repo name"),
    });
    expect(byFile["m-unknown.md"]).toMatchObject({ line: 10, column: 1, path: "wyh", message: "unknown key" });
    expect(byFile["m-fence.md"]).toMatchObject({ line: 1, message: expect.stringContaining("not closed") });
    expect(byFile["m-yaml.md"]).toMatchObject({ line: 3, message: expect.stringContaining("not valid YAML") });
    expect(byFile["m-named.md"]).toMatchObject({ line: 2, path: "id", message: expect.stringContaining("rename the file") });
    expect(byFile["m-huge.md"]!.message).toContain("over the 16384-byte limit");
    expect(byFile["m-link.md"]!.message).toContain("not a regular file");
    // A malformed file is never used: get throws with the same report, and create will not overwrite it.
    await expect(store.get("m-bad")).rejects.toMatchObject({
      code: "INVALID_MEMORY_ENTRY",
      message: expect.stringContaining("m-bad.md:7:11"),
    });
    expect(await store.create(sampleMemoryEntry("m-bad"))).toBe("exists");
    expect(readFileSync(join(dir.path, "m-bad.md"), "utf8")).toBe(bad);
  });

  it("refuses a bad directory argument", () => {
    expect(() => createFileMemoryStore("")).toThrow("expected the directory");
  });
});

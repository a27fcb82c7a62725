// The conformance suite every MemoryStore implementation passes (files today, PostgreSQL next):
// call it from the implementation's test file with a factory for an empty store.
import { describe, expect, it } from "vitest";
import type { MemoryEntry } from "../src/memory-entry.js";
import { MemoryEntryNotFoundError } from "../src/memory-errors.js";
import type { MemoryStore } from "../src/memory-store.js";

export function sampleEntry(id: string, overrides: Partial<MemoryEntry> = {}): MemoryEntry {
  return {
    id,
    kind: "decision",
    status: "proposed",
    title: `Decision ${id}`,
    body: "",
    applies: [{ repo: "api", paths: ["src/middleware"] }],
    why: "it keeps limits shared",
    decidedBy: "agent@s1",
    source: { kind: "handover", ref: "handover-1", by: "agent@s1" },
    createdAt: "2026-12-01T10:00:00.000Z",
    updatedAt: "2026-12-01T10:00:00.000Z",
    ...overrides,
  };
}

export function memoryStoreConformance(
  name: string,
  create: () => Promise<{ store: MemoryStore; [Symbol.asyncDispose](): Promise<void> }>,
): void {
  describe(`MemoryStore conformance: ${name}`, () => {
    it("creates once, gets, lists sorted by id, and refuses a second create of the same id", async () => {
      await using context = await create();
      const { store } = context;
      expect(await store.list()).toEqual({ entries: [], problems: [], usage: {} });
      expect(await store.create(sampleEntry("m-bbb"))).toBe("created");
      expect(
        await store.create(sampleEntry("m-aaa", { kind: "convention", why: undefined, decidedBy: undefined, applies: "workspace" })),
      ).toBe("created");
      expect(await store.create(sampleEntry("m-bbb", { title: "changed" }))).toBe("exists");
      expect((await store.get("m-bbb"))?.title).toBe("Decision m-bbb");
      expect(await store.get("m-zzz")).toBeUndefined();
      const { entries } = await store.list();
      expect(entries.map((entry) => entry.id)).toEqual(["m-aaa", "m-bbb"]);
      expect(entries[0]).toEqual(sampleEntry("m-aaa", { kind: "convention", why: undefined, decidedBy: undefined, applies: "workspace" }));
    });

    it("validates what it stores: a bad entry is refused and nothing is written", async () => {
      await using context = await create();
      const { store } = context;
      await expect(store.create(sampleEntry("Not An Id"))).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      await expect(store.create(sampleEntry("m-ccc", { title: "two\nlines" }))).rejects.toMatchObject({ code: "INVALID_MEMORY_ENTRY" });
      await expect(store.create(sampleEntry("m-ccc", { applies: [{ repo: "api", paths: ["../outside"] }] }))).rejects.toMatchObject({
        code: "INVALID_MEMORY_ENTRY",
      });
      expect((await store.list()).entries).toEqual([]);
    });

    it("updates as a compare-and-set, one writer at a time, and never changes an id", async () => {
      await using context = await create();
      const { store } = context;
      await store.create(sampleEntry("m-ddd", { body: "" }));
      await Promise.all(
        Array.from({ length: 8 }, (_, index) => store.update("m-ddd", (current) => ({ ...current, body: `${current.body}${index}` }))),
      );
      expect([...(await store.get("m-ddd"))!.body].sort().join("")).toBe("01234567");
      await expect(store.update("m-none", (current) => current)).rejects.toBeInstanceOf(MemoryEntryNotFoundError);
      await expect(store.update("m-ddd", (current) => ({ ...current, id: "m-eee" }))).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      expect(await store.get("m-eee")).toBeUndefined();
    });

    it("counts uses beside the entries without changing them", async () => {
      await using context = await create();
      const { store } = context;
      await store.create(sampleEntry("m-fff"));
      const before = await store.get("m-fff");
      await store.recordUse(["m-fff"], "2026-12-01T11:00:00.000Z");
      await store.recordUse(["m-fff"], "2026-12-01T12:00:00.000Z");
      const listing = await store.list();
      expect(listing.usage).toEqual({ "m-fff": { uses: 2, lastUsedAt: "2026-12-01T12:00:00.000Z" } });
      expect(await store.get("m-fff")).toEqual(before);
    });

    it("honours an abort before listing", async () => {
      await using context = await create();
      await expect(context.store.list({ abortSignal: AbortSignal.abort() })).rejects.toMatchObject({ code: "ABORTED" });
    });
  });
}

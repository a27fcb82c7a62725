// The conformance suite every MemoryStore implementation passes (files today, PostgreSQL next):
// call it from the implementation's test file with a factory for an empty store.
import { describe, expect, it } from "vitest";
import { MemoryEntryNotFoundError, type MemoryEntry, type MemoryStore } from "@bulkhead/memory";

/** A valid proposed decision with this id, for tests; `overrides` replace its fields. */
export function sampleMemoryEntry(id: string, overrides: Partial<MemoryEntry> = {}): MemoryEntry {
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

/** The conformance suite of `MemoryStore`: volatile, files and PostgreSQL run it and must behave the same. */
export function describeMemoryStore(
  name: string,
  create: () => Promise<{ store: MemoryStore; [Symbol.asyncDispose](): Promise<void> }>,
): void {
  describe(`MemoryStore conformance: ${name}`, () => {
    it("creates once, gets, lists sorted by id, and refuses a second create of the same id", async () => {
      await using context = await create();
      const { store } = context;
      expect(await store.list()).toEqual({ entries: [], problems: [], usage: {} });
      expect(await store.create(sampleMemoryEntry("m-bbb"))).toBe("created");
      expect(
        await store.create(sampleMemoryEntry("m-aaa", { kind: "convention", why: undefined, decidedBy: undefined, applies: "workspace" })),
      ).toBe("created");
      expect(await store.create(sampleMemoryEntry("m-bbb", { title: "changed" }))).toBe("exists");
      expect((await store.get("m-bbb"))?.title).toBe("Decision m-bbb");
      expect(await store.get("m-zzz")).toBeUndefined();
      const { entries } = await store.list();
      expect(entries.map((entry) => entry.id)).toEqual(["m-aaa", "m-bbb"]);
      expect(entries[0]).toEqual(
        sampleMemoryEntry("m-aaa", { kind: "convention", why: undefined, decidedBy: undefined, applies: "workspace" }),
      );
    });

    it("validates what it stores: a bad entry is refused and nothing is written", async () => {
      await using context = await create();
      const { store } = context;
      await expect(store.create(sampleMemoryEntry("Not An Id"))).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      await expect(store.create(sampleMemoryEntry("m-ccc", { title: "two\nlines" }))).rejects.toMatchObject({
        code: "INVALID_MEMORY_ENTRY",
      });
      await expect(store.create(sampleMemoryEntry("m-ccc", { applies: [{ repo: "api", paths: ["../outside"] }] }))).rejects.toMatchObject({
        code: "INVALID_MEMORY_ENTRY",
      });
      expect((await store.list()).entries).toEqual([]);
    });

    it("updates as a compare-and-set, one writer at a time, and never changes an id", async () => {
      await using context = await create();
      const { store } = context;
      await store.create(sampleMemoryEntry("m-ddd", { body: "" }));
      await Promise.all(
        Array.from({ length: 8 }, (_, index) => store.update("m-ddd", (current) => ({ ...current, body: `${current.body}${index}` }))),
      );
      expect([...(await store.get("m-ddd"))!.body].sort().join("")).toBe("01234567");
      await expect(store.update("m-none", (current) => current)).rejects.toBeInstanceOf(MemoryEntryNotFoundError);
      await expect(store.update("m-ddd", (current) => ({ ...current, id: "m-eee" }))).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      expect(await store.get("m-eee")).toBeUndefined();
    });

    it("lets exactly one of two racing creates of an id win", async () => {
      await using context = await create();
      const { store } = context;
      const results = await Promise.all([
        store.create(sampleMemoryEntry("m-race", { title: "first" })),
        store.create(sampleMemoryEntry("m-race", { title: "second" })),
      ]);
      expect([...results].sort()).toEqual(["created", "exists"]);
      expect((await store.list()).entries.map((entry) => entry.id)).toEqual(["m-race"]);
    });

    it("counts an id given twice in one use twice, and refuses a bad id before counting anything", async () => {
      await using context = await create();
      const { store } = context;
      await store.create(sampleMemoryEntry("m-ggg"));
      await store.recordUse(["m-ggg", "m-ggg"], "2026-12-01T11:00:00.000Z");
      await expect(store.recordUse(["m-ggg", "Not An Id"], "2026-12-01T12:00:00.000Z")).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      expect((await store.list()).usage).toEqual({ "m-ggg": { uses: 2, lastUsedAt: "2026-12-01T11:00:00.000Z" } });
    });

    it("counts uses beside the entries without changing them", async () => {
      await using context = await create();
      const { store } = context;
      await store.create(sampleMemoryEntry("m-fff"));
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

import { describe, expect, it } from "vitest";
import { sampleMemoryEntry } from "@bulkhead/test-utils";
import { createVolatileMemoryStore } from "./memory-store.js";
import { proposeFromHandover } from "./propose-from-handover.js";
import { proposeMemoryEntry } from "./propose-memory-entry.js";
import { acceptMemoryEntry, applyMemoryPolicy, dropMemoryEntry } from "./review-memory-entry.js";

const handover = {
  id: "handover-20261201T100000000Z-a1b2c3",
  task: { id: "rate-limit", title: "Rate limiting" },
  createdAt: "2026-12-01T10:00:00.000Z",
  crossRepoImpact: { reposTouched: ["api"] },
  decisions: [
    "Rate limits live in Redis — instances share counters",
    "[applies: workspace] Errors carry a code because scripts branch on it",
    "   ",
  ],
  notes: [
    "Failure: the in-process limiter reset on deploy",
    "Convention: one middleware per file",
    "[applies: web:src/routes, api] Pattern: 429 carries Retry-After",
  ],
};

describe("proposeFromHandover", () => {
  it("turns decisions and notes into proposed, attributed entries with stable ids", () => {
    const entries = proposeFromHandover(handover, { by: "agent@s1" });
    expect(entries.map((entry) => [entry.kind, entry.status, entry.title, entry.why, entry.learning, entry.applies])).toEqual([
      ["decision", "proposed", "Rate limits live in Redis", "instances share counters", undefined, [{ repo: "api", paths: [] }]],
      ["decision", "proposed", "Errors carry a code", "scripts branch on it", undefined, "workspace"],
      ["learning", "proposed", "the in-process limiter reset on deploy", undefined, "failure", [{ repo: "api", paths: [] }]],
      ["convention", "proposed", "one middleware per file", undefined, undefined, [{ repo: "api", paths: [] }]],
      [
        "learning",
        "proposed",
        "429 carries Retry-After",
        undefined,
        "pattern",
        [
          { repo: "web", paths: ["src/routes"] },
          { repo: "api", paths: [] },
        ],
      ],
    ]);
    expect(
      entries.every(
        (entry) => entry.source.ref === handover.id && entry.source.by === "agent@s1" && entry.createdAt === handover.createdAt,
      ),
    ).toBe(true);
    expect(proposeFromHandover(handover, { by: "agent@s1" })).toEqual(entries);
    expect(new Set(entries.map((entry) => entry.id)).size).toBe(entries.length);
    // A malformed tag is left in the text for the reviewer, never guessed at.
    expect(proposeFromHandover({ ...handover, decisions: ["[applies: ../x] Use X"], notes: [] })[0]!.title).toBe("[applies: ../x] Use X");
    expect(() => proposeFromHandover({} as typeof handover)).toThrow("expected a handover document");
  });
});

describe("acceptMemoryEntry, dropMemoryEntry, applyMemoryPolicy", () => {
  it("only a person accepts: never an agent, never the proposer; decided entries are not decided again", async () => {
    const store = createVolatileMemoryStore([sampleMemoryEntry("m-one"), sampleMemoryEntry("m-two"), sampleMemoryEntry("m-three")]);
    await expect(acceptMemoryEntry(store, "m-one", { by: "agent@s9" })).rejects.toMatchObject({ code: "MEMORY_REFUSED" });
    await expect(acceptMemoryEntry(store, "m-one", { by: "" })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    const now = () => new Date("2026-12-02T09:00:00.000Z");
    const accepted = await acceptMemoryEntry(store, "m-one", {
      by: "alice",
      now,
      edit: { applies: "workspace", title: "Redis holds limits" },
    });
    expect(accepted).toMatchObject({
      status: "accepted",
      acceptedBy: "alice",
      acceptedAt: "2026-12-02T09:00:00.000Z",
      applies: "workspace",
      title: "Redis holds limits",
    });
    await expect(acceptMemoryEntry(store, "m-one", { by: "bob" })).rejects.toThrow("is already accepted by alice");
    await expect(acceptMemoryEntry(store, "m-none", { by: "bob" })).rejects.toMatchObject({ code: "MEMORY_ENTRY_NOT_FOUND" });
    // An edit is validated like a file: a two-line title is refused and nothing changes.
    await expect(acceptMemoryEntry(store, "m-two", { by: "bob", edit: { title: "a\nb" } })).rejects.toMatchObject({
      code: "INVALID_MEMORY_ENTRY",
    });
    expect((await store.get("m-two"))!.status).toBe("proposed");
    const dropped = await dropMemoryEntry(store, "m-two", { by: "bob", reason: "one-off", now });
    expect(dropped).toMatchObject({ status: "dropped", droppedBy: "bob", dropReason: "one-off" });
    await expect(dropMemoryEntry(store, "m-two", { by: "bob" })).rejects.toMatchObject({ code: "MEMORY_REFUSED" });
    await expect(acceptMemoryEntry(store, "m-two", { by: "carol" })).rejects.toThrow("is already dropped");
  });

  it("refuses the proposer accepting an agent- or commit-sourced proposal of their own, but a person may accept what they wrote", async () => {
    const fromCommit = proposeMemoryEntry({
      kind: "learning",
      title: "Flaky test",
      applies: "workspace",
      source: { kind: "commit", ref: "abc123", by: "dave" },
    });
    const mine = proposeMemoryEntry({
      kind: "convention",
      title: "Kebab-case files",
      applies: "workspace",
      source: { kind: "person", ref: "dave", by: "dave" },
    });
    const store = createVolatileMemoryStore([fromCommit, mine]);
    await expect(acceptMemoryEntry(store, fromCommit.id, { by: "dave" })).rejects.toThrow("who cannot also accept it");
    await expect(acceptMemoryEntry(store, mine.id, { by: "dave" })).resolves.toMatchObject({ status: "accepted" });
  });

  it("a configured policy accepts what it allows, recorded as the policy", async () => {
    const store = createVolatileMemoryStore([
      sampleMemoryEntry("m-dec"),
      sampleMemoryEntry("m-conv", { kind: "convention", why: undefined, decidedBy: undefined }),
    ]);
    const ids = await applyMemoryPolicy(store, { name: "conventions", accepts: (entry) => entry.kind === "convention" });
    expect(ids).toEqual(["m-conv"]);
    expect(await store.get("m-conv")).toMatchObject({ status: "accepted", acceptedBy: "policy:conventions" });
    expect((await store.get("m-dec"))!.status).toBe("proposed");
    await expect(applyMemoryPolicy(store, { name: "bad name", accepts: () => true })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });
});

import { ProposalAlreadyDecidedError, type Proposal, type ProposalStore } from "@bulkhead/core";
import { afterEach, describe, expect, it } from "vitest";

const proposal = (id: string, createdAt: string, status: Proposal["status"] = "pending"): Proposal => ({
  id,
  repo: "frontend",
  file: "src/api.ts",
  diff: `--- a\n+++ b\n@@ ${id}`,
  reason: "cross-repo",
  status,
  createdAt,
});

/**
 * The conformance suite of {@link ProposalStore}: memory, files and PostgreSQL run it and must
 * behave the same. `create` returns a new, empty store; `close` (when the store has it) is called after.
 */
export function describeProposalStore(name: string, create: () => Promise<ProposalStore & { close?(): Promise<void> }>): void {
  describe(`ProposalStore conformance: ${name}`, () => {
    const opened: (ProposalStore & { close?(): Promise<void> })[] = [];
    const open = async () => {
      const store = await create();
      opened.push(store);
      return store;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((store) => store.close?.()));
    });

    it("creates, reads and lists proposals in creation order, filtered by status", async () => {
      const store = await open();
      await store.create(proposal("p2", "2026-01-02T00:00:00.000Z"));
      await store.create(proposal("p1", "2026-01-01T00:00:00.000Z"));
      await store.create(proposal("p3", "2026-01-03T00:00:00.000Z", "approved"));
      expect((await store.list()).map((record) => record.id)).toEqual(["p1", "p2", "p3"]);
      expect((await store.list({ status: "pending" })).map((record) => record.id)).toEqual(["p1", "p2"]);
      expect(await store.get("p2")).toEqual(proposal("p2", "2026-01-02T00:00:00.000Z"));
      expect(await store.get("missing")).toBeUndefined();
    });

    it("updates as a compare-and-set: concurrent decisions apply one at a time", async () => {
      const store = await open();
      await store.create(proposal("p1", "2026-01-01T00:00:00.000Z"));
      const decide = (by: string) =>
        store.update("p1", (current) => {
          if (!current) throw new Error("missing");
          if (current.status !== "pending") throw new ProposalAlreadyDecidedError(current);
          return { ...current, status: "approved", decidedBy: by, decidedAt: "2026-01-01T00:00:01.000Z" };
        });
      const outcomes = await Promise.allSettled(Array.from({ length: 8 }, (_, index) => decide(`person-${index}`)));
      expect(outcomes.filter((outcome) => outcome.status === "fulfilled")).toHaveLength(1);
      for (const outcome of outcomes)
        if (outcome.status === "rejected") expect(ProposalAlreadyDecidedError.isInstance(outcome.reason)).toBe(true);
      expect((await store.get("p1"))?.status).toBe("approved");
    });

    it("runs exclusive sections one at a time", async () => {
      const store = await open();
      let inside = 0;
      let most = 0;
      await Promise.all(
        Array.from({ length: 6 }, (_, index) =>
          store.exclusive(async () => {
            inside++;
            most = Math.max(most, inside);
            await new Promise((resolve) => setTimeout(resolve, 10));
            await store.create(proposal(`x${index}`, `2026-01-0${index + 1}T00:00:00.000Z`));
            inside--;
          }),
        ),
      );
      expect(most).toBe(1);
      expect(await store.list()).toHaveLength(6);
    });
  });
}

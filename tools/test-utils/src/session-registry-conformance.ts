import type { SessionRegistry } from "@bulkhead/core";
import { afterEach, describe, expect, it } from "vitest";

/** The conformance suite of {@link SessionRegistry}: files and PostgreSQL run it and must behave the same. */
export function describeSessionRegistry(name: string, create: () => Promise<SessionRegistry>): void {
  describe(`SessionRegistry conformance: ${name}`, () => {
    const opened: SessionRegistry[] = [];
    const open = async () => {
      const registry = await create();
      opened.push(registry);
      return registry;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((registry) => registry.close?.()));
    });

    it("records which host and engine hold each session, and lists them all or by host", async () => {
      const registry = await open();
      await registry.register({ id: "s2", host: "runner-b", engine: "docker://b", state: "running" });
      const first = await registry.register({ id: "s1", host: "runner-a", engine: "docker://a", project: "shop", state: "running" });
      expect(first).toMatchObject({ id: "s1", host: "runner-a", engine: "docker://a", project: "shop", state: "running" });
      expect(first.createdAt).toBeGreaterThan(0);
      expect((await registry.list()).map((record) => `${record.id}@${record.host}`)).toEqual(["s1@runner-a", "s2@runner-b"]);
      expect((await registry.list({ host: "runner-b" })).map((record) => record.id)).toEqual(["s2"]);
      expect(await registry.get("nope")).toBeUndefined();
    });

    it("lets exactly one of two hosts register the same id", async () => {
      const registry = await open();
      const outcomes = await Promise.allSettled(
        ["runner-a", "runner-b", "runner-c"].map((host) => registry.register({ id: "same", host, engine: "docker://x", state: "running" })),
      );
      expect(outcomes.filter((outcome) => outcome.status === "fulfilled")).toHaveLength(1);
      expect(
        outcomes.filter((outcome) => outcome.status === "rejected").map((outcome) => String((outcome as PromiseRejectedResult).reason)),
      ).toEqual([expect.stringMatching(/already registered by host runner-/), expect.stringMatching(/already registered by host runner-/)]);
    });

    it("changes and removes a session only from its own host", async () => {
      const registry = await open();
      await registry.register({ id: "s1", host: "runner-a", engine: "docker://a", state: "running" });
      await expect(registry.update("s1", { host: "runner-b", state: "stopped" })).rejects.toThrow(/belongs to host runner-a/);
      expect((await registry.update("s1", { host: "runner-a", state: "stopped" })).state).toBe("stopped");
      await expect(registry.remove("s1", { host: "runner-b" })).rejects.toThrow(/belongs to host runner-a/);
      await registry.remove("s1", { host: "runner-a" });
      expect(await registry.list()).toEqual([]);
    });
  });
}

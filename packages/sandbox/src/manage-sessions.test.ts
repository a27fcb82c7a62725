import { existsSync, mkdirSync, rmSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { createTempDir, docker, initRepo, type TempDir } from "@bulkhead/test-utils";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { SandboxBackend } from "@bulkhead/core";
import { createSessions, gc, reconcile, type CreateSessionsOptions } from "./manage-sessions.js";
import { defineProject, type Project } from "./project-config.js";
import { listSessions } from "./index.js";

describe("fan-out, reconcile and gc", () => {
  it("creates several sessions at once, then finds orphans and missing containers", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "app"));
    const home = join(dir.path, "home");
    const project = defineProject({
      name: "fanout",
      repos: [{ name: "app", path: join(dir.path, "app") }],
      image: { existing: inject("testImage") },
    });
    const sessions = await createSessions(project, 3, { concurrency: 2, home });
    try {
      expect(new Set(sessions.map((session) => session.id)).size).toBe(3);
      expect((await listSessions({ home, project: "fanout" })).map((entry) => entry.container)).toEqual(["running", "running", "running"]);
      expect(await reconcile({ home })).toEqual({
        orphanContainers: [],
        missingContainers: [],
        configDrift: [],
        stopped: [],
        incomplete: [],
        unpaused: [],
      });

      const [orphaned, missing] = sessions as [(typeof sessions)[0], (typeof sessions)[0]];
      rmSync(join(home, "sessions", orphaned.id), { recursive: true });
      await new Docker().getContainer(`bulkhead-${missing.id}`).remove({ force: true });
      const found = await reconcile({ home });
      expect(found.orphanContainers).toContain(orphaned.id);
      expect(found.missingContainers).toEqual([missing.id]);

      expect(await gc({ home, dryRun: true, missing: true })).toEqual({
        removedContainers: found.orphanContainers,
        removedSessions: [missing.id],
      });
      expect(docker(["ps", "-a", "--filter", `label=dev.bulkhead.session=${orphaned.id}`, "--format", "{{.ID}}"])).not.toBe("");
      await gc({ home, missing: true });
      expect(docker(["ps", "-a", "--filter", `label=dev.bulkhead.session=${orphaned.id}`, "--format", "{{.ID}}"])).toBe("");
      expect((await listSessions({ home, project: "fanout" })).map((entry) => entry.id)).toEqual([sessions[2]!.id]);

      // The project's config changed since the session was made: drift, when asked against it.
      const changed = defineProject({
        name: "fanout",
        repos: [{ name: "app", path: join(dir.path, "app") }],
        image: { existing: inject("testImage") },
        resources: { pids: 512 },
      });
      expect((await reconcile({ home, project: changed })).configDrift).toEqual([sessions[2]!.id]);
      expect((await reconcile({ home, project })).configDrift).toEqual([]);
      await expect(createSessions(project, 0, { home })).rejects.toThrow("expected a whole number of sessions from 1 to 1000, got 0");

      // A stopped container is reported, and start() brings it back.
      await sessions[2]!.stop();
      expect((await reconcile({ home })).stopped).toEqual([sessions[2]!.id]);
      await sessions[2]!.start();
      expect((await reconcile({ home })).stopped).toEqual([]);

      // A controller that died mid-creation left a directory without a state file: once it is
      // old enough not to be a creation in progress, gc removes it.
      const abandoned = join(home, "sessions", "s0abandoned0");
      mkdirSync(join(abandoned, "workspace"), { recursive: true });
      expect((await reconcile({ home })).incomplete).toEqual([]);
      utimesSync(abandoned, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
      expect((await reconcile({ home })).incomplete).toEqual(["s0abandoned0"]);
      expect((await gc({ home })).removedSessions).toEqual(["s0abandoned0"]);
      expect(existsSync(abandoned)).toBe(false);
    } finally {
      for (const session of sessions) await session.remove({ force: true }).catch(() => undefined);
    }
  });
});

describe("createSessions: its arguments are checked before anything is made", () => {
  let dir: TempDir;
  let project: Project;
  beforeAll(() => {
    dir = createTempDir();
    initRepo(join(dir.path, "app"));
    project = defineProject({ name: "checked", repos: [{ name: "app", path: join(dir.path, "app") }], image: { existing: "none:latest" } });
  });
  afterAll(() => dir?.remove());
  // A backend that records any call: a refused argument must reach none of it.
  const calls: string[] = [];
  const backend = new Proxy({} as SandboxBackend, {
    get: (_target, name) => () => {
      calls.push(String(name));
      throw new Error(`backend.${String(name)} called`);
    },
  });

  it.each([
    ["a count of 0", 0, {}, "invalid count: expected a whole number of sessions from 1 to 1000, got 0"],
    ["a fractional count", 2.5, {}, "invalid count: expected a whole number of sessions from 1 to 1000, got 2.5"],
    ["a count over 1000", 1001, {}, "invalid count: expected a whole number of sessions from 1 to 1000, got 1001"],
    ["a concurrency of 0", 2, { concurrency: 0 }, "invalid options: concurrency: expected a positive whole number"],
    ["a home that is not a string", 2, { home: 5 }, "invalid options: home:"],
    ["an abortSignal that is not a signal", 2, { abortSignal: "stop" }, "invalid options: abortSignal:"],
    ["an unknown option", 2, { concurency: 2 }, 'invalid options: Unrecognized key: "concurency"'],
  ])("refuses %s with INVALID_ARGUMENT", async (_name, count, options, message) => {
    const refused = createSessions(project, count, { backend, ...options } as CreateSessionsOptions);
    await expect(refused).rejects.toThrow(message);
    await expect(refused).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(calls).toEqual([]);
  });
});

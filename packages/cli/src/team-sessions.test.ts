import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTempDir, docker, initRepo, startTestPostgres } from "@bulkhead/test-utils";
import { afterEach, describe, expect, inject, it } from "vitest";
import { main } from "./main.js";

async function cli(args: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  const saved = Object.fromEntries(Object.keys(env).map((name) => [name, process.env[name]]));
  Object.assign(process.env, env);
  let out = "";
  let err = "";
  try {
    const code = await main(args, {
      stdout: (text) => void (out += text),
      stderr: (text) => void (err += text),
      progress: () => undefined,
    });
    return { code, out, err };
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

describe("the team's sessions in the registry (BULKHEAD_STORE)", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("session start registers it with its host and engine, any host lists it, rm unregisters it; no store up, no session", async () => {
    const postgres = await startTestPostgres();
    cleanups.push(() => postgres.stop());
    const dir = createTempDir();
    cleanups.push(async () => dir.remove());
    initRepo(join(dir.path, "app"));
    // A project name of this run only: the engine is shared, and the last check counts its containers.
    const project = `team-${Date.now().toString(36)}`;
    writeFileSync(
      join(dir.path, "bulkhead.yaml"),
      `name: ${project}\nrepos:\n  - name: app\n    path: app\nimage:\n  existing: ${inject("testImage")}\n`,
    );
    // Two hosts: their own BULKHEAD_HOME and name, one database.
    const ci = { BULKHEAD_STORE: postgres.url, BULKHEAD_HOST: "ci-runner-1", BULKHEAD_HOME: join(dir.path, "ci-home") };
    const workstation = { BULKHEAD_STORE: postgres.url, BULKHEAD_HOST: "ws-2", BULKHEAD_HOME: join(dir.path, "ws-home") };

    const started = await cli(["session", "start", join(dir.path, "bulkhead.yaml"), "--json"], ci);
    expect(started.code, started.err).toBe(0);
    const { id } = JSON.parse(started.out) as { id: string };
    cleanups.push(async () => void (await cli(["session", "rm", id, "--force"], ci)));

    const listed = await cli(["session", "list", "--json"], workstation);
    expect(JSON.parse(listed.out)).toEqual([
      expect.objectContaining({
        id,
        host: "ci-runner-1",
        engine: expect.stringMatching(/^docker:\/\//),
        project,
        state: "running",
      }),
    ]);
    expect((await cli(["session", "list"], workstation)).out).toContain(`${id}  ${project}  running  host ci-runner-1  docker://`);
    // Without a store, a host sees only its own sessions: the workstation has none.
    expect(JSON.parse((await cli(["session", "list", "--json"], { ...workstation, BULKHEAD_STORE: "" })).out)).toEqual([]);

    expect((await cli(["session", "rm", id, "--force"], ci)).code).toBe(0);
    expect(JSON.parse((await cli(["session", "list", "--json"], workstation)).out)).toEqual([]);

    // The registry is down: the session is not started, and nothing of it is left behind.
    postgres.stopServer();
    const refused = await cli(["session", "start", join(dir.path, "bulkhead.yaml"), "--json"], ci);
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.out).error).toMatchObject({
      message: expect.stringMatching(/^registry: the postgres session-registry store could not .*: nothing was granted/),
    });
    expect(JSON.parse((await cli(["session", "list", "--json"], { ...ci, BULKHEAD_STORE: "" })).out)).toEqual([]);
    expect(docker(["ps", "-a", "--filter", `label=dev.bulkhead.project=${project}`, "--format", "{{.Names}}"])).toBe("");
  });
});

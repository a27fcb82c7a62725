import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createPostgresSessionRegistry } from "@bulkhead/postgres";
import { createTempDir, docker, findPostgresBin, initRepo, startTestPostgres, type TestPostgres } from "@bulkhead/test-utils";
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

  it("a host that stops confirming its sessions has them listed as stale, not running; its heartbeat confirms them again", async () => {
    const postgres = await startTestPostgres();
    cleanups.push(() => postgres.stop());
    const dir = createTempDir();
    cleanups.push(async () => dir.remove());
    initRepo(join(dir.path, "app"));
    const project = `stale-${Date.now().toString(36)}`;
    writeFileSync(
      join(dir.path, "bulkhead.yaml"),
      `name: ${project}\nrepos:\n  - name: app\n    path: app\nimage:\n  existing: ${inject("testImage")}\n`,
    );
    const ci = { BULKHEAD_STORE: postgres.url, BULKHEAD_HOST: "ci-runner-1", BULKHEAD_HOME: join(dir.path, "ci-home") };
    const workstation = { BULKHEAD_STORE: postgres.url, BULKHEAD_HOST: "ws-2", BULKHEAD_HOME: join(dir.path, "ws-home") };
    const started = await cli(["session", "start", join(dir.path, "bulkhead.yaml"), "--json"], ci);
    expect(started.code, started.err).toBe(0);
    const { id } = JSON.parse(started.out) as { id: string };
    cleanups.push(async () => void (await cli(["session", "rm", id, "--force"], ci)));

    // A runner that died an hour ago: its entry still says running. And an entry of ci-runner-1
    // that no session under its BULKHEAD_HOME matches.
    const registry = createPostgresSessionRegistry({ connectionString: postgres.url });
    const engine = "docker://unix:///var/run/docker.sock";
    await registry.register({ id: "s0dead00000001", host: "dead-runner", engine, project, state: "running" });
    await registry.register({ id: "s0elsewhere0001", host: "ci-runner-1", engine, project, state: "running" });
    await registry.close();
    const hourAgo = (where: string) => age(postgres, 3_600_000, where);
    hourAgo("id IN ('s0dead00000001', 's0elsewhere0001')");

    type Listed = { id: string; state: string; recordedState?: string; confirmedAt: string };
    const list = async (env: Record<string, string>, ...extra: string[]) => {
      const listed = await cli(["session", "list", "--json", ...extra], env);
      expect(listed.code, listed.out).toBe(0);
      return Object.fromEntries((JSON.parse(listed.out) as Listed[]).map((entry) => [entry.id, entry]));
    };
    let seen = await list(workstation);
    expect(seen["s0dead00000001"]).toMatchObject({ state: "stale", recordedState: "running" });
    expect(Date.now() - Date.parse(seen["s0dead00000001"]!.confirmedAt)).toBeGreaterThanOrEqual(3_600_000);
    expect(seen[id]).toMatchObject({ state: "running" });
    expect(seen[id]!.recordedState).toBeUndefined();
    expect((await cli(["session", "list"], workstation)).out).toMatch(
      /s0dead00000001 {2}stale-\w+ {2}stale \(running, last confirmed by its host 1h 0m ago\) {2}host dead-runner {2}docker:\/\//,
    );
    // A longer grace keeps it running; a bad one is wrong usage naming the flag.
    expect((await list(workstation, "--stale-after", "2h"))["s0dead00000001"]).toMatchObject({ state: "running" });
    expect(await cli(["session", "list", "--stale-after", "soon"], workstation)).toMatchObject({
      code: 1,
      err: expect.stringContaining("--stale-after: expected a duration"),
    });

    // ci-runner-1 goes quiet for an hour too: the workstation's listing does not confirm it (not its session).
    hourAgo(`id = '${id}'`);
    expect((await list(workstation))[id]).toMatchObject({ state: "stale", recordedState: "running" });
    // ci-runner-1's heartbeat (a timer) confirms what it holds; what it does not find it leaves alone.
    const beat = await cli(["session", "heartbeat", "--json"], ci);
    expect(beat.code, beat.out).toBe(0);
    expect(JSON.parse(beat.out)).toEqual({ host: "ci-runner-1", confirmed: [id], unconfirmed: ["s0elsewhere0001"] });
    seen = await list(workstation);
    expect(seen[id]).toMatchObject({ state: "running" });
    expect(seen["s0elsewhere0001"]).toMatchObject({ state: "stale" });
    expect(seen["s0dead00000001"]).toMatchObject({ state: "stale" });
    // Listing on ci-runner-1 confirms its own sessions as well, with their real state.
    hourAgo(`id = '${id}'`);
    expect((await list(ci))[id]).toMatchObject({ state: "running" });
    expect(await cli(["session", "stop", id], ci)).toMatchObject({ code: 0 });
    hourAgo(`id = '${id}'`);
    expect((await list(ci))[id]).toMatchObject({ state: "stopped" });
    // Without a store there is nothing to confirm: wrong usage naming the variable.
    expect(await cli(["session", "heartbeat"], { ...ci, BULKHEAD_STORE: "" })).toMatchObject({
      code: 1,
      err: expect.stringContaining("BULKHEAD_STORE is not set"),
    });
  });
});

/** Moves the registry's confirmation stamp of some entries `ms` into the past, with the real psql. */
function age(postgres: TestPostgres, ms: number, where: string): void {
  execFileSync(
    join(findPostgresBin(), "psql"),
    [
      "-h",
      postgres.socketDir,
      "-U",
      postgres.user,
      "-d",
      postgres.database,
      "-v",
      "ON_ERROR_STOP=1",
      "-q",
      "-c",
      `UPDATE bulkhead.sessions SET updated_at = updated_at - ${ms} WHERE ${where}`,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
}

// Unit tests of the layers above the backend (Session, Job, changes, fetchCode) on the test-only
// process backend, which passes the same conformance suite as Docker (process-backend.test.ts).
// The Docker-backed tests in src/ cover the same calls on the real engine.
import { execFileSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AbortedError } from "@bulkhead/core";
import { createTempDir, git, initRepo, type TempDir } from "@bulkhead/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSession, defineProject, getSession, listSessions, type Project, type Session } from "../src/index.js";
import { createProcessBackend } from "./process-backend.js";

describe("sessions on the process backend", () => {
  const backend = createProcessBackend();
  let dir: TempDir;
  let home: string;
  let project: Project;

  beforeAll(() => {
    dir = createTempDir();
    home = join(dir.path, "home");
    initRepo(join(dir.path, "app"), { "src/index.ts": "export {};\n" });
    project = defineProject({
      name: "process",
      repos: [{ name: "app", path: join(dir.path, "app") }],
      image: { existing: "none" },
      agent: { command: ["/bin/sh", "-c", "echo agent ran > /workspace/app/agent.txt"] },
    });
  });
  afterAll(async () => {
    await backend.dispose();
    dir.remove();
  });

  const running = async (session: Session) => (await backend.inspect(session.instance))?.state;

  it("disposes a session it created, and never one it looked up", async () => {
    let id: string;
    {
      await using created = await createSession(project, { backend, home });
      id = created.id;
      expect(created.ownsLifecycle).toBe(true);
      {
        await using looked = getSession(id, { backend, home });
        expect(looked.ownsLifecycle).toBe(false);
        expect((await looked.exec(["echo", "seen"])).stdout).toBe("seen\n");
      }
      // The looked-up object went out of scope: the session it named still runs.
      expect(await running(created)).toBe("running");
    }
    // The creator's object went out of scope: now it is stopped (and kept).
    const again = getSession(id, { backend, home });
    expect(await running(again)).toBe("stopped");
    expect((await listSessions({ backend, home })).find((entry) => entry.id === id)?.container).toBe("stopped");
    await again.remove({ force: true });
  });

  it("ends every abort the same way: AbortedError with the signal's reason, and the work stopped", async () => {
    await using session = await createSession(project, { backend, home });
    const reason = new Error("the caller gave up");
    // exec: the command and its process group are killed, then AbortedError.
    const controller = new AbortController();
    const exec = session.execStream(["/bin/sh", "-c", "echo started; sleep 3141; echo never > /workspace/app/never.txt"], {
      abortSignal: controller.signal,
    });
    const first = await exec.next();
    expect(first.value).toMatchObject({ data: Buffer.from("started\n") });
    controller.abort(reason);
    // What the command wrote before it was killed may still come; then the abort.
    const error = await (async () => {
      for await (const _chunk of exec);
    })().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AbortedError);
    expect((error as AbortedError).cause).toBe(reason);
    // Killed with its whole process group (dash's kill needs `--` for a group: this failed before).
    expect(execFileSync("ps", ["-eo", "args"], { encoding: "utf8" })).not.toContain("sleep 3141");
    await expect(session.exec(["true"], { abortSignal: AbortSignal.abort(reason) })).rejects.toBeInstanceOf(AbortedError);
    // A timeout is the call's own limit: it reports, it does not throw.
    expect(await session.exec(["sleep", "30"], { timeoutMs: 200 })).toMatchObject({ timedOut: true });
    // job.wait and job.logs({ follow }): the wait ends, the job keeps running until killed.
    const job = await session.inject({ command: ["/bin/sh", "-c", "echo going; sleep 30"] });
    const waiting = new AbortController();
    const waited = job.wait({ abortSignal: waiting.signal, pollMs: 10 });
    waiting.abort(reason);
    await expect(waited).rejects.toMatchObject({ code: "ABORTED", cause: reason });
    const following = new AbortController();
    const logs: string[] = [];
    const followed = (async () => {
      for await (const chunk of job.logs({ follow: true, pollMs: 10, abortSignal: following.signal })) {
        logs.push(chunk);
        following.abort(reason);
      }
    })();
    await expect(followed).rejects.toBeInstanceOf(AbortedError);
    expect(logs.join("")).toContain("going");
    await job.kill({ graceMs: 0 });
    expect((await job.wait({ pollMs: 10 })).exitCode).toBe(137);
    // inject and fetchCode: refused before anything is started or written.
    await expect(session.inject({ command: ["true"], abortSignal: AbortSignal.abort(reason) })).rejects.toBeInstanceOf(AbortedError);
    expect(session.jobs()).toHaveLength(1);
    writeFileSync(join(session.state.workspace, "app", "changed.txt"), "changed\n");
    await expect(session.fetchCode({ abortSignal: AbortSignal.abort(reason) })).rejects.toBeInstanceOf(AbortedError);
    expect(git(join(dir.path, "app"), ["for-each-ref", `refs/bulkhead/${session.id}/`])).toBe("");
    expect(existsSync(join(session.state.workspace, "app", "never.txt"))).toBe(false);
    await session.remove({ force: true });
  });

  it("runs the agent, reads its change, fetches it, and reports what stop and remove kept", async () => {
    const session = await createSession(project, { backend, home });
    const job = await session.inject();
    expect(await job.wait({ pollMs: 10 })).toEqual({ exitCode: 0 });
    const changes = await session.changes();
    expect(changes.repos[0]!.paths.map((change) => `${change.kind} ${change.path}`)).toEqual(["added agent.txt"]);
    const [fetched] = await session.fetchCode({ changes });
    expect(fetched).toMatchObject({ status: "fetched", changedFiles: ["agent.txt"] });
    expect(await session.stop()).toEqual({
      sessionId: session.id,
      container: "stopped",
      kept: { workspace: session.state.workspace, stateDir: join(home, "sessions", session.id) },
    });
    expect((await session.stop()).container).toBe("not-running");
    const report = await session.remove();
    expect(report).toEqual({
      sessionId: session.id,
      container: "removed",
      removedDir: join(home, "sessions", session.id),
      unregistered: false,
      kept: { refs: [{ repo: "app", ref: fetched!.ref!, commit: fetched!.commit! }] },
    });
    expect(existsSync(report.removedDir)).toBe(false);
    expect((await session.remove({ force: true })).container).toBe("missing");
  });

  it("validates its options up front", async () => {
    await expect(createSession(project, { backend, home, docker: {} } as never)).rejects.toThrow(/options: Unrecognized key/);
    await expect(createSession(project, { backend: {} as never, home })).rejects.toThrow("expected a SandboxBackend");
    await using session = await createSession(project, { backend, home });
    await expect(session.exec(["true"], { timeoutMs: -1 })).rejects.toThrow(/options: timeoutMs/);
    await expect(session.inject({ command: ["true"], worktree: "yes" } as never)).rejects.toThrow(/options: worktree/);
    expect(() => session.job("nope")).toThrow('has no job "nope"');
  });
});

// Kill -9 of the controller at random points of changes(), fetchCode() and harvest(), 20 runs on
// the real engine: afterwards the container is never left paused (the next call undoes a dead
// holder's pause), the source repository is never half-committed (fsck clean, every ref
// resolves, the session's branch exists only with its one commit), and a harvest from a new
// process gives the same commit every time, the one any killed harvest left on the branch.
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createSession, defineProject, getSession } from "@bulkhead/sandbox";
import { createTempDir, git, initRepo } from "@bulkhead/test-utils";
import { describe, expect, inject, it } from "vitest";

const image = inject("testImage");
const RUNS = 20;

/** A deterministic sequence in [0, 1), so a failing run can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
}

describe("harvest, fetchCode and changes killed with SIGKILL", () => {
  it(`leave no paused container, no half commit, and the same commit on the next harvest (${RUNS} runs)`, async () => {
    await using dir = createTempDir();
    const api = join(dir.path, "api");
    initRepo(
      api,
      Object.fromEntries(Array.from({ length: 300 }, (_, index) => [`src/file-${index}.ts`, `export const v${index} = ${index};\n`])),
    );
    const base = git(api, ["rev-parse", "HEAD"]);
    const home = join(dir.path, "home");
    const project = defineProject({ name: "kill", repos: [{ name: "api", path: api }], image: { existing: image } });
    await using session = await createSession(project, { home });
    // The agent changes a hundred files and adds one.
    const script =
      "cd /workspace/api && for i in $(seq 0 99); do echo changed >> src/file-$i.ts; done && echo new > src/new.ts && rm src/file-299.ts";
    expect(await session.exec(["/bin/sh", "-c", script])).toMatchObject({ exitCode: 0 });
    const spec = join(dir.path, "task.yaml");
    writeFileSync(
      spec,
      "task: Change files\nid: KILL-1\ncontext_scope:\n  repos:\n    - name: api\n      paths: ['src/']\n  max_files: 500\n  max_tokens: 100000\nownership:\n  primary_repo: api\n",
    );
    const proposals = join(dir.path, "proposals");
    mkdirSync(proposals);
    const child = join(import.meta.dirname, "..", "test", "harvest-child.ts");
    const runChild = (mode: string, killAfterMs?: number) =>
      new Promise<{ code: number | null; signal: string | null; out: string }>((resolve) => {
        const process_ = spawn(process.execPath, ["--import", "tsx", child, home, session.id, spec, proposals, mode], {
          cwd: join(import.meta.dirname, ".."),
          stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        let timer: NodeJS.Timeout | undefined;
        process_.stdout.on("data", (data: Buffer) => (out += data.toString("utf8")));
        // The timer starts when the child says its start-up is done, so the kill lands in its work
        // however fast or loaded the machine is.
        process_.stderr.on("data", (data: Buffer) => {
          if (killAfterMs !== undefined && timer === undefined && data.toString("utf8").includes("ready"))
            timer = setTimeout(() => process_.kill("SIGKILL"), killAfterMs);
        });
        process_.on("exit", (code, signal) => {
          if (timer) clearTimeout(timer);
          resolve({ code, signal, out });
        });
      });
    const branch = `refs/heads/bulkhead/${session.id}`;
    const paused = async () => (await session.backend.inspect(session.instance))?.state === "paused";
    const checkSource = () => {
      // Dangling objects (a killed write's blobs or commit that no ref reaches) are not damage.
      expect(git(api, ["fsck", "--no-progress", "--strict", "--no-dangling"])).toBe("");
      for (const line of git(api, ["for-each-ref", "--format=%(objectname) %(refname)"]).split("\n").filter(Boolean)) {
        const [oid, ref] = line.split(" ");
        expect(git(api, ["cat-file", "-t", oid!]), ref).toBe("commit");
      }
      const tip = git(api, ["for-each-ref", "--format=%(objectname)", branch]);
      // The session's branch exists only with its commit: the lead's commit creates it on the base,
      // so a harvest killed before that leaves no branch, never one at the base.
      if (tip) expect(git(api, ["rev-list", "--count", `${base}..${tip}`])).toBe("1");
      expect(git(api, ["rev-parse", "HEAD"])).toBe(base);
      return tip;
    };

    // How long the work takes here: one warm changes() in this process. A cold child doing the
    // same (or more: fetch and harvest start with it) takes longer, so a kill within twice it
    // lands mid-work.
    let workMs = 0;
    for (let round = 0; round < 3; round++) {
      const started = performance.now();
      await session.changes();
      workMs = Math.max(workMs, performance.now() - started);
    }
    const next = random(12);
    const modes = ["harvest", "fetch", "changes"];
    const tips = new Set<string>();
    const killed: string[] = [];
    for (let run = 0; run < RUNS; run++) {
      const mode = modes[run % modes.length]!;
      // A random point of the child's work, after its start-up: within one warm changes() for
      // changes and fetch (a cold child takes at least that), within three for a harvest (its lead
      // commits after the read and the guard), so most kills land mid-work on a quiet machine too.
      const delay = Math.floor(next() * (mode === "harvest" ? 3 : 1) * workMs);
      const outcome = await runChild(mode, delay);
      expect(outcome.signal === "SIGKILL" || outcome.code === 0, `${mode} after ${delay} ms: ${JSON.stringify(outcome)}`).toBe(true);
      if (outcome.signal === "SIGKILL") killed.push(`${mode}@${delay}`);
      // The next call (from this process) undoes a pause whose holder died.
      await getSession(session.id, { home }).changes();
      expect(await paused(), `${mode} killed after ${delay} ms`).toBe(false);
      const tip = checkSource();
      if (tip) tips.add(tip);
    }
    console.log(`killed ${killed.length} of ${RUNS}: ${killed.join(" ")}`);
    // Most runs die in their work, not before or after it: the test is about those.
    expect(killed.length).toBeGreaterThanOrEqual(RUNS / 2);
    const first = await runChild("harvest");
    const second = await runChild("harvest");
    expect([first.code, second.code]).toEqual([0, 0]);
    const sha = (JSON.parse(first.out) as { sha: string }).sha;
    expect((JSON.parse(second.out) as { sha: string }).sha).toBe(sha);
    // Whatever point a harvest was killed at, a commit it left on the branch is the one every
    // later harvest ends with (recovery finishes it; nothing replaces it).
    expect([...tips].filter((tip) => tip !== sha)).toEqual([]);
    expect(checkSource()).toBe(sha);
    expect(git(api, ["diff", "--name-only", base, sha]).split("\n")).toHaveLength(102);
    expect(await paused()).toBe(false);
  });
});

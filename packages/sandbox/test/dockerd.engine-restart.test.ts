// Runs in its own stage (vitest.engine-restart.config.ts): it stops and starts dockerd.
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createTempDir, git, initRepo, restartEngine, gitInWorkspace } from "@bulkhead/test-utils";
import { describe, expect, inject, it } from "vitest";
import { reconcile } from "../src/manage-sessions.js";
import { defineProject } from "../src/project-config.js";
import { createSession, getSession, listSessions } from "../src/index.js";

describe("a dockerd restart under running sessions", () => {
  it("brings running sessions back, leaves a stopped one stopped, and loses nothing in the workspaces", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "app"), { "src/index.ts": "export {};\n" });
    const home = join(dir.path, "home");
    const project = defineProject({
      name: "restart",
      repos: [{ name: "app", path: join(dir.path, "app") }],
      image: { existing: inject("testImage") },
    });
    const running = await createSession(project, { home });
    const parked = await createSession(project, { home });
    try {
      // Work in progress: a commit on the session branch and a file that is not committed.
      await running.exec([
        "/bin/sh",
        "-c",
        "echo 'export const limit = 100;' > /workspace/app/src/limit.ts; echo draft > /workspace/app/notes.txt",
      ]);
      const clone = join(running.state.workspace, "app");
      gitInWorkspace(clone, ["add", "src/limit.ts"]);
      gitInWorkspace(clone, ["commit", "--quiet", "-m", "Add a limit"]);
      const head = gitInWorkspace(clone, ["rev-parse", "HEAD"]);
      const busy = await running.inject({ command: ["/bin/sh", "-c", "echo working; sleep 600"] });
      await parked.exec(["/bin/sh", "-c", "echo parked > /workspace/app/parked.txt"]);
      await parked.stop();

      await restartEngine();

      // The daemon restarts unless-stopped containers as it comes up, not before its API answers.
      const states = async () => Object.fromEntries((await listSessions({ home })).map((entry) => [entry.id, entry.container]));
      for (let attempt = 0; attempt < 60 && (await states())[running.id] !== "running"; attempt++) await sleep(500);
      expect(await states()).toEqual({ [running.id]: "running", [parked.id]: "stopped" });
      expect(await reconcile({ home })).toEqual({
        orphanContainers: [],
        missingContainers: [],
        configDrift: [],
        stopped: [parked.id],
        incomplete: [],
        // No pause was left behind by the restart.
        unpaused: [],
      });

      // Reattached as another process would: the workspace is as it was, and the session works.
      const again = getSession(running.id, { home });
      expect((await again.exec(["cat", "/workspace/app/notes.txt", "/workspace/app/src/limit.ts"])).stdout).toBe(
        "draft\nexport const limit = 100;\n",
      );
      // The job's process died with the old container: wait() says so instead of waiting forever.
      await expect(again.job(busy.id).wait()).rejects.toMatchObject({ code: "SESSION_FAILED", step: "job" });
      expect(again.jobs().find((job) => job.id === busy.id)).toMatchObject({ lost: true });
      let output = "";
      for await (const chunk of again.job(busy.id).logs({ follow: true })) output += chunk;
      expect(output).toBe("working\n");
      const [fetched] = await again.fetchCode({ strict: true });
      expect(fetched).toMatchObject({ repo: "app", status: "fetched", headSha: head, commits: 1, uncommitted: ["notes.txt"] });
      // fetchCode records the whole change (the agent's commit and its uncommitted file) as one commit.
      expect(git(join(dir.path, "app"), ["rev-parse", fetched!.ref!])).toBe(fetched!.commit);
      expect(git(join(dir.path, "app"), ["show", `${fetched!.ref!}:notes.txt`])).toBe("draft");

      const resumed = getSession(parked.id, { home });
      await resumed.start();
      expect((await resumed.exec(["cat", "/workspace/app/parked.txt"])).stdout).toBe("parked\n");
      expect((await reconcile({ home })).stopped).toEqual([]);
    } finally {
      await running.remove({ force: true }).catch(() => undefined);
      await parked.remove({ force: true }).catch(() => undefined);
    }
  });
});

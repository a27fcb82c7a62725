import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createTempDir, git, initRepo } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";

const worker = new URL("../test/stress-worker.ts", import.meta.url).pathname;
const WORKERS = Number(process.env.BULKHEAD_STRESS_WORKERS ?? 20);
const PER_WORKER = Number(process.env.BULKHEAD_STRESS_SUBMISSIONS ?? 50);

describe("git-lead under stress", () => {
  it(
    `${WORKERS} worker processes × ${PER_WORKER} submissions, leads killed -9 at random and restarted: each submission committed exactly once`,
    { timeout: 900_000 },
    async () => {
      await using dir = createTempDir();
      const repo = join(dir.path, "repo");
      initRepo(repo, { "README.md": "# stress\n" });
      const start = (name: string): ChildProcess =>
        spawn(process.execPath, ["--import", "tsx", worker, repo, name, String(PER_WORKER)], {
          cwd: join(import.meta.dirname, ".."),
          stdio: ["ignore", "pipe", "inherit"],
        });
      const running = new Map<string, ChildProcess>();
      let kills = 0;
      let killedExits = 0;
      let failed = false;
      // A worker that fails rejects this promise (never a throw inside the listener, which would be
      // an uncaught exception outside the test); a worker killed -9 is started again.
      const finished = new Promise<void>((resolve, reject) => {
        const launch = (name: string) => {
          const child = start(name);
          running.set(name, child);
          child.on("error", (error) => {
            failed = true;
            reject(error);
          });
          child.on("exit", (code, signal) => {
            running.delete(name);
            if (failed) return;
            if (signal === "SIGKILL") {
              killedExits++;
              launch(name);
            } else if (code !== 0) {
              failed = true;
              for (const other of running.values()) other.kill("SIGKILL");
              reject(new Error(`worker ${name} exited with ${code ?? signal}`));
              return;
            }
            if (running.size === 0) resolve();
          });
        };
        for (let index = 0; index < WORKERS; index++) launch(`w${index}`);
      });
      // Kill a random live worker now and then; whichever holds the lead lock dies mid-work sometimes.
      const killer = setInterval(() => {
        const children = [...running.values()].filter((child) => child.exitCode === null && child.signalCode === null);
        const victim = children[Math.floor(Math.random() * children.length)];
        if (victim && kills < 25 && victim.kill("SIGKILL")) kills++;
      }, 700);
      const started = Date.now();
      try {
        await finished;
      } finally {
        clearInterval(killer);
      }
      // The test is about surviving kill -9: a run in which no worker died proves nothing.
      expect(killedExits).toBeGreaterThan(0);
      expect(killedExits).toBeLessThanOrEqual(kills);
      const seconds = (Date.now() - started) / 1000;

      const total = WORKERS * PER_WORKER;
      const log = git(repo, ["log", "--format=%H %P%x09%(trailers:key=Bulkhead-Issue,valueonly,separator=)", "--name-status"]);
      const commits = log.split("\n\n").filter(Boolean);
      const issues = new Map<string, string[]>();
      let current: string | undefined;
      for (const line of log.split("\n").filter(Boolean)) {
        const header = /^([0-9a-f]{40}) ((?:[0-9a-f]{40} ?)*)\t(.*)$/.exec(line);
        if (header) {
          current = header[3] || undefined;
          if (current) issues.set(current, [...(issues.get(current) ?? []), `commit ${header[1]}`]);
        } else if (current) issues.get(current)!.push(line);
      }
      expect(issues.size).toBe(total);
      for (const [issue, entries] of issues) {
        const [workerName, index] = issue.split("-") as [string, string];
        expect(entries.filter((entry) => entry.startsWith("commit "))).toHaveLength(1);
        expect(entries.slice(1)).toEqual([`A\t${workerName}/f${index}.txt`]);
        expect(readFileSync(join(repo, workerName, `f${index}.txt`), "utf8")).toBe(`${workerName} submission ${index}\n`);
      }
      expect(git(repo, ["rev-list", "--count", "HEAD"])).toBe(String(total + 1));
      expect(git(repo, ["rev-list", "--min-parents=2", "HEAD"])).toBe("");
      expect(git(repo, ["fsck", "--full", "--no-progress", "--no-dangling"])).toBe("");
      expect(git(repo, ["status", "--porcelain"])).toBe("");
      for (let index = 0; index < WORKERS; index++) {
        for (let submission = 0; submission < PER_WORKER; submission++) {
          const result = JSON.parse(readFileSync(join(repo, ".git/bulkhead/results", `w${index}-${submission}.json`), "utf8"));
          expect(result.status).toBe("committed");
        }
      }
      console.log(
        `git-lead stress: ${total} submissions from ${WORKERS} processes, ${kills} kill -9, ${commits.length} commit blocks, ${seconds.toFixed(1)} s, ${(total / seconds).toFixed(1)} commits/s`,
      );
    },
  );
});

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createTempDir, git, startTestPostgres, type TempDir } from "@bulkhead/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { killingGit, remoteHistory, runHost, setUpRemote } from "../test/remote-fixtures.js";

// Hosts are separate processes, each with its own clone of the bare remote and its own BULKHEAD_HOME.
const HOSTS = 4;
const ISSUES = Number(process.env.BULKHEAD_LANDING_ISSUES ?? 50);
const between = (low: number, high: number) => low + Math.floor(Math.random() * (high - low + 1));

/** Checks the remote after a run: one commit per issue, linear, fsck clean, nothing lost. */
function checkRemote(remote: string, expected: string[]): void {
  const history = remoteHistory(remote);
  expect(history.length).toBe(expected.length + 1);
  // Linear: the first commit has no parent, every other has exactly the one before it.
  history.forEach((commit, index) => expect(commit.parents).toEqual(index === 0 ? [] : [history[index - 1]!.sha]));
  const issues = history.slice(1).map((commit) => commit.issue);
  expect(new Set(issues).size).toBe(issues.length);
  expect([...issues].sort()).toEqual([...expected].sort());
  expect(git(remote, ["fsck", "--strict", "--no-dangling", "--no-progress"])).toBe("");
}

describe("leads on four hosts landing on one remote", () => {
  let dir: TempDir;
  beforeEach(() => {
    dir = createTempDir();
  });
  afterEach(() => dir.remove());

  const homes = (count: number) =>
    Array.from({ length: count }, (_, host) => {
      const home = join(dir.path, `host-${host}`, "home");
      mkdirSync(home, { recursive: true });
      return home;
    });
  const expectedIssues = (count: number) =>
    Array.from({ length: HOSTS }, (_, host) =>
      Array.from({ length: count }, (_, index) => `ISSUE-h${host}-${String(index).padStart(3, "0")}`),
    ).flat();

  it(`${HOSTS} hosts × ${ISSUES} issues, two SIGKILLed at random points: one commit per issue, linear, fsck clean, none lost`, async () => {
    const { remote, clones } = setUpRemote(dir, HOSTS);
    const home = homes(HOSTS);
    const bin = killingGit(dir);
    // Host 1 dies around one of its pushes (before or after git sent it); host 3 at a random moment.
    const pushVictim = { host: 1, at: between(3, ISSUES - 3), when: Math.random() < 0.5 ? "before" : "after" };
    const timedVictim = { host: 3, afterResults: between(2, ISSUES - 5), delayMs: between(0, 40) };
    console.log(JSON.stringify({ pushVictim, timedVictim }));
    const marker = join(dir.path, "kill-marker");
    const start = (host: number, env: Record<string, string> = {}) =>
      runHost([clones[host]!, remote, String(host), String(ISSUES)], { BULKHEAD_HOME: home[host]!, ...env });
    const runs = Array.from({ length: HOSTS }, (_, host) =>
      start(
        host,
        host === pushVictim.host
          ? { PATH: `${bin}:${process.env.PATH}`, KILL_AT: String(pushVictim.at), KILL_MARKER: marker, KILL_WHEN: pushVictim.when }
          : {},
      ),
    );
    const timed = runs[timedVictim.host]!;
    let seen = 0;
    timed.child.stdout!.on("data", (chunk: Buffer) => {
      seen += chunk
        .toString()
        .split("\n")
        .filter((line) => line.startsWith("RESULT")).length;
      if (seen >= timedVictim.afterResults) setTimeout(() => timed.child.kill("SIGKILL"), timedVictim.delayMs);
    });
    const first = await Promise.all(runs.map((run) => run.done));
    expect(first[pushVictim.host]!.signal).toBe("SIGKILL");
    expect(first[timedVictim.host]!.signal).toBe("SIGKILL");
    for (const host of [0, 2]) expect(first[host]!.code).toBe(0);

    // The killed hosts start again on the same clone and home, and submit the same ids.
    const again = await Promise.all([pushVictim.host, timedVictim.host].map((host) => start(host).done));
    for (const run of again) expect(run.code).toBe(0);
    const finals = [first[0]!, again[0]!, first[2]!, again[1]!];
    const history = new Map(remoteHistory(remote).map((commit) => [commit.sha, commit.issue]));
    for (const [host, run] of finals.entries()) {
      const results = run.lines.filter((line) => line.startsWith("RESULT"));
      // Said in full when something was not committed: the reason is the evidence.
      for (const line of results) if (!/ committed [0-9a-f]{40}$/.test(line)) console.log(`host ${host}: ${line}`);
      expect(results).toHaveLength(ISSUES);
      for (const line of results) {
        const [, id, status, sha] = line.split(" ");
        expect(status, line).toBe("committed");
        // Every answer names the commit that carries its issue on the remote.
        expect(history.get(sha!), `host ${host}: ${line}`).toBe(`ISSUE-${id}`);
      }
    }
    checkRemote(remote, expectedIssues(ISSUES));
    const lost = finals.map((run) => JSON.parse(run.lines.at(-1)!.slice("DONE ".length)) as { lost: number });
    console.log(`pushes lost and rebuilt per host: ${lost.map((entry) => entry.lost).join(", ")}`);
  }, 900_000);

  it(`with a PostgreSQL landing lock, ${HOSTS} hosts take turns: no push loses, even when a lock holder is SIGKILLed`, async () => {
    await using postgres = await startTestPostgres();
    const issues = 10;
    const { remote, clones } = setUpRemote(dir, HOSTS);
    const home = homes(HOSTS);
    const bin = killingGit(dir);
    const marker = join(dir.path, "kill-marker");
    const start = (host: number, env: Record<string, string> = {}) =>
      runHost([clones[host]!, remote, String(host), String(issues), postgres.url], { BULKHEAD_HOME: home[host]!, ...env });
    // Host 2 dies holding the lock, just before a push: the others must not wait for it.
    const runs = Array.from({ length: HOSTS }, (_, host) =>
      start(host, host === 2 ? { PATH: `${bin}:${process.env.PATH}`, KILL_AT: "4", KILL_MARKER: marker, KILL_WHEN: "before" } : {}),
    );
    const first = await Promise.all(runs.map((run) => run.done));
    expect(first[2]!.signal).toBe("SIGKILL");
    const again = await start(2).done;
    expect(again.code).toBe(0);
    const finals = [first[0]!, first[1]!, again, first[3]!];
    for (const run of finals) expect(run.lines.filter((line) => / committed [0-9a-f]{40}$/.test(line))).toHaveLength(issues);
    checkRemote(remote, expectedIssues(issues));
    // In turn, every lead built on the tip it pushed to: no push lost the compare-and-swap.
    expect(finals.map((run) => (JSON.parse(run.lines.at(-1)!.slice("DONE ".length)) as { lost: number }).lost)).toEqual([0, 0, 0, 0]);
  }, 900_000);
});

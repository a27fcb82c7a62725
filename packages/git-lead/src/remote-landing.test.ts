import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { InvalidArgumentError } from "@bulkhead/core";
import { createTempDir, git, type TempDir } from "@bulkhead/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fileChange, killingGit, remoteHistory, runHost, setUpRemote } from "../test/remote-fixtures.js";
import { createCommitLead } from "./create-commit-lead.js";
import type { JournalEntry } from "./journal.js";
import { openIntents } from "./recover-intents.js";
import { RemoteLanding } from "./remote-landing.js";

const author = { name: "Lead", email: "lead@example.com" };

describe("a lead that lands on a shared remote", () => {
  let dir: TempDir;
  let remote: string;
  let clones: string[];
  beforeEach(() => {
    dir = createTempDir();
    ({ remote, clones } = setUpRemote(dir, 2));
  });
  afterEach(() => dir.remove());

  it("pushes the issue's commit to the remote with a lease, and its own branch follows", async () => {
    const lead = await createCommitLead({ dir: clones[0]!, author, remote: { url: remote } });
    const result = await lead.submit({ issueId: "A-1", worker: "w", changes: [fileChange("a.txt", "a\n")], message: "Add a" });
    await lead.close();
    expect(result).toMatchObject({ status: "committed", files: ["a.txt"] });
    if (result.status !== "committed") throw new Error("expected a commit");
    expect(git(remote, ["rev-parse", "main"])).toBe(result.sha);
    expect(git(clones[0]!, ["rev-parse", "main"])).toBe(result.sha);
    expect(git(remote, ["log", "-1", "--format=%B", "main"])).toBe(
      `Add a\n\nBulkhead-Issue: A-1\nBulkhead-Worker: w\nBulkhead-Submission: ${result.id}`,
    );
    expect(git(remote, ["fsck", "--no-dangling", "--no-progress"])).toBe("");
  });

  it("rebuilds on the new tip when another host landed first, and refuses when the same file moved", async () => {
    const first = await createCommitLead({ dir: clones[0]!, author, remote: { url: remote } });
    // The second lead's gate waits until the first lead has landed: its push then meets a moved tip.
    let release = () => {};
    let gate = Promise.resolve();
    const hold = () => (gate = new Promise<void>((resolve) => (release = resolve)));
    const second = await createCommitLead({
      dir: clones[1]!,
      author,
      remote: { url: remote },
      gates: [{ name: "wait", run: async () => (await gate, { ok: true }) }],
    });
    const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

    hold();
    const pending = second.submit({ issueId: "B-1", worker: "w2", changes: [fileChange("b.txt", "b\n")], message: "Add b" });
    await settle();
    const a = await first.submit({ issueId: "A-1", worker: "w1", changes: [fileChange("a.txt", "a\n")], message: "Add a" });
    release();
    const b = await pending;

    hold();
    const conflicting = second.submit({ issueId: "B-2", worker: "w2", changes: [fileChange("shared.txt", "v3\n")], message: "Shared v3" });
    await settle();
    const shared = await first.submit({ issueId: "A-2", worker: "w1", changes: [fileChange("shared.txt", "v2\n")], message: "Shared v2" });
    release();
    const conflict = await conflicting;
    await first.close();
    await second.close();

    if (a.status !== "committed" || b.status !== "committed" || shared.status !== "committed") throw new Error("expected commits");
    // Rebuilt on the tip the first lead left: its parent is the first lead's commit, and a.txt is in its tree.
    expect(b.parent).toBe(a.sha);
    expect(git(remote, ["show", `${b.sha}:a.txt`])).toBe("a");
    expect(conflict).toMatchObject({ status: "rejected", reason: expect.stringMatching(/^conflict: shared\.txt changed on /) });
    expect(git(remote, ["show", "main:shared.txt"])).toBe("v2");
    const history = remoteHistory(remote);
    expect(history.map((commit) => commit.issue)).toEqual([undefined, "A-1", "B-1", "A-2"]);
    expect(history.every((commit) => commit.parents.length <= 1)).toBe(true);
    expect(git(remote, ["fsck", "--no-dangling", "--no-progress"])).toBe("");
    // The lost push is in the second lead's journal: an intent, its abort, then the rebuilt intent.
    expect(git(clones[1]!, ["rev-parse", "main"])).toBe(history[2]!.sha);
  });

  it("refuses an issue another host already landed, and a clone whose branch has commits the remote lacks", async () => {
    const first = await createCommitLead({ dir: clones[0]!, author, remote: { url: remote } });
    let release!: () => void;
    const landedFirst = new Promise<void>((resolve) => (release = resolve));
    const second = await createCommitLead({
      dir: clones[1]!,
      author,
      remote: { url: remote },
      gates: [{ name: "wait", run: async () => (await landedFirst, { ok: true }) }],
    });
    const late = second.submit({ issueId: "X-1", worker: "w2", changes: [fileChange("x2.txt", "x\n")], message: "X again" });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await first.submit({ issueId: "X-1", worker: "w1", changes: [fileChange("x1.txt", "x\n")], message: "X" })).status).toBe(
      "committed",
    );
    release();
    expect(await late).toMatchObject({ status: "rejected", reason: expect.stringMatching(/^issue X-1 already has its commit .* on /) });
    await first.close();
    await second.close();

    // A commit made in the lead's clone by hand, never pushed: the lead will not bury it.
    const work = join(dir.path, "work");
    git(dir.path, ["clone", "--quiet", clones[0]!, work]);
    writeFileSync(join(work, "local.txt"), "local\n");
    git(work, ["add", "local.txt"]);
    git(work, ["commit", "--quiet", "-m", "local only"]);
    git(work, ["push", "--quiet", "origin", "main"]);
    const stuck = await createCommitLead({ dir: clones[0]!, author, remote: { url: remote } });
    expect(await stuck.submit({ issueId: "Y-1", worker: "w", changes: [fileChange("y.txt", "y\n")], message: "Y" })).toMatchObject({
      status: "rejected",
      reason: expect.stringMatching(/has commits that .* does not/),
    });
    await stuck.close();
    expect(remoteHistory(remote).map((commit) => commit.issue)).toEqual([undefined, "X-1"]);
  });

  it("counts a commit that an attempt pushed after its lead died, found on the remote by its Bulkhead-Submission", async () => {
    const base = git(remote, ["rev-parse", "main"]);
    // The push that outlived its lead: submission s-orphan's commit reached the remote, its lead never heard.
    const other = await createCommitLead({ dir: clones[0]!, author, remote: { url: remote } });
    const orphan = await other.submit({ id: "s-orphan", issueId: "O-1", worker: "w", changes: [fileChange("o.txt", "o\n")], message: "O" });
    await other.close();
    if (orphan.status !== "committed") throw new Error("expected a commit");
    const landing = new RemoteLanding({ gitdir: clones[1]!, branch: "main", url: remote });
    const tip = await landing.tip();
    expect(tip).toBe(orphan.sha);
    const ask = (id: string, issueId: string) => landing.check({ id, issueId, fixup: false, tip, committer: "Lead <lead@example.com>" });
    // Nothing remembered: a fresh submission has nothing to look for.
    expect(await ask("s-orphan", "O-1")).toBeUndefined();
    landing.remember([
      {
        type: "intent",
        id: "s-orphan",
        issueId: "O-1",
        worker: "w",
        parent: base,
        commit: "0".repeat(40),
        paths: ["o.txt"],
        fence: 1,
        remote,
        at: "",
        gates: [],
      },
      { type: "aborted", id: "s-orphan", reason: "the lead stopped before the branch moved", at: "" },
      {
        type: "intent",
        id: "s-other",
        issueId: "O-1",
        worker: "w",
        parent: base,
        commit: "1".repeat(40),
        paths: ["p.txt"],
        fence: 1,
        remote,
        at: "",
        gates: [],
      },
    ]);
    expect(await ask("s-orphan", "O-1")).toEqual({ landed: orphan.sha });
    expect(git(clones[1]!, ["rev-parse", "main"])).toBe(orphan.sha);
    // Another submission for the same issue finds the issue's commit and is refused.
    expect(await ask("s-other", "O-1")).toEqual({ refuse: expect.stringMatching(/^issue O-1 already has its commit /) });
  });

  it("validates the remote option", async () => {
    await expect(createCommitLead({ dir: clones[0]!, author, remote: { url: "--upload-pack=touch /tmp/x" } })).rejects.toThrow(
      InvalidArgumentError,
    );
    await expect(createCommitLead({ dir: clones[0]!, author, remote: { url: "ext::sh -c touch% /tmp/x" } })).rejects.toThrow(
      InvalidArgumentError,
    );
  });

  for (const when of ["before", "after"] as const) {
    it(`a lead SIGKILLed ${when} its push: the next lead ${when === "before" ? "rolls back and lands it" : "finds it on the remote"}, once`, async () => {
      const bin = killingGit(dir);
      const marker = join(dir.path, "kill-marker");
      const env = { PATH: `${bin}:${process.env.PATH}`, KILL_AT: "2", KILL_MARKER: marker, KILL_WHEN: when };
      const killed = await runHost([clones[0]!, remote, "0", "4"], env).done;
      expect(killed.signal).toBe("SIGKILL");
      expect(existsSync(marker)).toBe(false);
      expect(killed.lines).toEqual([
        expect.stringMatching(/^RESULT h0-000 committed /),
        expect.stringMatching(/^RESULT h0-001 committed /),
      ]);
      // On the remote: issues 0, 1, and 2 only when the push went out before the kill.
      expect(remoteHistory(remote).length).toBe(when === "after" ? 4 : 3);
      const again = await runHost([clones[0]!, remote, "0", "4"]).done;
      expect(again.code).toBe(0);
      expect(again.lines.filter((line) => line.startsWith("RESULT")).every((line) => / committed [0-9a-f]{40}$/.test(line))).toBe(true);
      const history = remoteHistory(remote);
      expect(history.map((commit) => commit.issue)).toEqual([undefined, "ISSUE-h0-000", "ISSUE-h0-001", "ISSUE-h0-002", "ISSUE-h0-003"]);
      // The answer for issue 2 names the commit that is on the remote.
      expect(again.lines.find((line) => line.startsWith("RESULT h0-002"))).toBe(`RESULT h0-002 committed ${history[3]!.sha}`);
      expect(git(clones[0]!, ["rev-parse", "main"])).toBe(history[4]!.sha);
      expect(git(remote, ["fsck", "--no-dangling", "--no-progress"])).toBe("");
    });
  }
});

describe("openIntents", () => {
  it("keeps a retry's intent open when an earlier attempt of the same submission was aborted", () => {
    const intent = (commit: string): JournalEntry => ({
      type: "intent",
      id: "s1",
      issueId: "I-1",
      worker: "w",
      parent: undefined,
      commit,
      paths: [],
      fence: 1,
      at: "",
      gates: [],
    });
    expect(openIntents([intent("a".repeat(40)), { type: "aborted", id: "s1", reason: "lost", at: "" }, intent("b".repeat(40))])).toEqual([
      intent("b".repeat(40)),
    ]);
    expect(openIntents([intent("a".repeat(40)), { type: "pushed", id: "s1", commit: "a".repeat(40), remote: "r", at: "" }])).toHaveLength(
      1,
    );
    expect(openIntents([intent("a".repeat(40)), { type: "committed", id: "s1", issueId: "I-1", sha: "a".repeat(40), at: "" }])).toEqual([]);
  });
});

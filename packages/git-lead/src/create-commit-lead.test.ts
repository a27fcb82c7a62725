import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createMemoryProposalStore, createMultiRepoGuard } from "@bulkhead/core";
import { createTempDir, git, initRepo, type TempDir } from "@bulkhead/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createCommitLead, type CommitLeadEvents } from "./create-commit-lead.js";

const author = { name: "Lead", email: "lead@example.com" };

describe("createCommitLead", () => {
  let dir: TempDir;
  let repo: string;
  beforeEach(() => {
    dir = createTempDir();
    repo = join(dir.path, "backend-api");
    initRepo(repo, { "src/routes/index.ts": "export const routes = [];\n", "src/old.ts": "old\n", "docs/a.md": "a\n" });
  });
  afterEach(() => dir.remove());

  it("makes exactly one commit holding exactly the submitted files, with trailers, and leaves git status clean", async () => {
    const lead = await createCommitLead({ dir: repo, author });
    const events: string[] = [];
    for (const name of ["submission-queued", "commit-created"] as const)
      lead.on(name, (event: CommitLeadEvents[typeof name]) => events.push(`${name} ${event.issueId}`));
    dir.write({
      "backend-api/src/middleware/rateLimit.ts": "export const rateLimit = 1;\n",
      "backend-api/src/routes/index.ts": "export const routes = [rateLimit];\n",
      "backend-api/notes.txt": "a worker's scratch file\n",
    });
    rmSync(join(repo, "src/old.ts"));
    const result = await lead.submit({
      issueId: "RATE-1",
      worker: "agent-1",
      files: ["src/middleware/rateLimit.ts", "./src/routes/index.ts", "src/old.ts"],
      message: "Add rate limiting",
      usage: { inputTokens: 1000, outputTokens: 200 },
    });
    expect(result).toMatchObject({
      status: "committed",
      issueId: "RATE-1",
      files: ["src/middleware/rateLimit.ts", "src/routes/index.ts", "src/old.ts"],
    });
    if (result.status !== "committed") throw new Error("expected a commit");
    expect(git(repo, ["rev-parse", "HEAD"])).toBe(result.sha);
    expect(git(repo, ["show", "--name-status", "--format=", "HEAD"]).split("\n").sort()).toEqual([
      "A\tsrc/middleware/rateLimit.ts",
      "D\tsrc/old.ts",
      "M\tsrc/routes/index.ts",
    ]);
    expect(git(repo, ["log", "-1", "--format=%B"])).toBe(
      "Add rate limiting\n\nBulkhead-Issue: RATE-1\nBulkhead-Worker: agent-1\nBulkhead-Tokens: 1200 (in 1000, out 200)",
    );
    expect(git(repo, ["status", "--porcelain"])).toBe("?? notes.txt");
    expect(git(repo, ["fsck", "--full", "--no-progress"])).toBe("");
    expect(events).toEqual(["submission-queued RATE-1", "commit-created RATE-1"]);
    const again = await lead.submit({ issueId: "RATE-1", worker: "agent-2", files: ["notes.txt"], message: "More" });
    expect(again).toMatchObject({
      status: "rejected",
      reason: expect.stringMatching(/^issue RATE-1 already has its commit [0-9a-f]{12}: submit with fixup: true/),
    });
    expect(await lead.submit({ issueId: "RATE-1", worker: "agent-2", files: ["notes.txt"], message: "Fixup", fixup: true })).toMatchObject({
      status: "committed",
    });
    await lead.close();
  });

  it("refuses files outside the manifest, holds guarded writes, and fails closed on gates", async () => {
    const guard = createMultiRepoGuard({
      primaryRepo: "backend-api",
      store: createMemoryProposalStore(),
      scope: { canWrite: (_repo, path) => path.startsWith("src/") },
    });
    const lead = await createCommitLead({
      dir: repo,
      author,
      guard,
      gates: [{ name: "lint", run: ({ files }) => ({ ok: !files.some((file) => file.includes("bad")), output: "checked" }) }],
    });
    const events: string[] = [];
    lead.on("gate-end", (event) => events.push(`gate-end ${event.issueId} ${event.gate.name} ${event.gate.ok}`));
    lead.on("submission-held", (event) => events.push(`submission-held ${event.issueId}`));
    lead.on("submission-rejected", (event) => events.push(`submission-rejected ${event.issueId}`));
    dir.write({ "backend-api/src/a.ts": "a\n", "backend-api/docs/b.md": "b\n", "backend-api/src/bad.ts": "x\n" });
    expect(await lead.submit({ issueId: "A-1", worker: "w", files: ["docs/b.md"], message: "m", manifest: ["src/"] })).toMatchObject({
      status: "rejected",
      reason: "files outside w's manifest: docs/b.md",
    });
    expect(await lead.submit({ issueId: "A-2", worker: "w", files: ["docs/b.md"], message: "m" })).toMatchObject({
      status: "held",
      proposals: [{ file: "docs/b.md" }],
    });
    expect(await lead.submit({ issueId: "A-3", worker: "w", files: ["src/bad.ts"], message: "m" })).toMatchObject({
      status: "rejected",
      reason: "gate lint failed",
      gates: [{ name: "lint", ok: false, output: "checked" }],
    });
    expect(events).toEqual(["submission-rejected A-1", "submission-held A-2", "gate-end A-3 lint false", "submission-rejected A-3"]);
    // A person approves the held change: submitted again, it is committed.
    const [proposal] = await guard.pending();
    await guard.approve({ id: proposal!.id, by: "ana" });
    expect(await lead.submit({ issueId: "A-2", worker: "w", files: ["docs/b.md"], message: "m" })).toMatchObject({ status: "committed" });
    // The gate's output is evidence in the journal too, not only in the result.
    const rejected = readFileSync(join(repo, ".git/bulkhead/journal.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { type: string; issueId?: string; gates?: unknown })
      .filter((entry) => entry.type === "rejected");
    expect(rejected).toEqual([
      expect.objectContaining({ issueId: "A-1", gates: [] }),
      expect.objectContaining({ issueId: "A-3", reason: "gate lint failed", gates: [{ name: "lint", ok: false, output: "checked" }] }),
    ]);
    const commandGate = await createCommitLead({
      dir: repo,
      author,
      gates: [{ name: "slow", command: [process.execPath, "-e", "setTimeout(() => {}, 60000)"], timeoutMs: 100 }],
    });
    expect(await commandGate.submit({ issueId: "A-4", worker: "w", files: ["src/a.ts"], message: "m" })).toMatchObject({
      status: "rejected",
      gates: [{ ok: false, output: expect.stringContaining("timed out after 100 ms") }],
    });
    expect(git(repo, ["rev-list", "--count", "HEAD"])).toBe("2");
    expect((await lead.status()).held).toHaveLength(0);
    await expect(lead.submit({ issueId: "", worker: "w", files: [], message: "" })).rejects.toThrow(
      "invalid submission: issueId: expected an issue id; files: list at least one file; message: write a commit message",
    );
    await expect(lead.submit({ issueId: "A-5", worker: "w", files: ["../outside.txt"], message: "m" })).resolves.toMatchObject({
      status: "rejected",
      reason: 'file "../outside.txt" climbs above the repo root',
    });
    await Promise.all([lead.close(), commandGate.close()]);
  });

  it("recovers an intent whose ref moved, and rolls back one whose ref did not", async () => {
    const lead = await createCommitLead({ dir: repo, author });
    dir.write({ "backend-api/src/a.ts": "a\n" });
    const first = await lead.submit({ issueId: "R-1", worker: "w", files: ["src/a.ts"], message: "m" });
    if (first.status !== "committed") throw new Error("expected a commit");
    const state = join(repo, ".git/bulkhead");
    // Simulate a crash after the ref moved but before the outcome was journaled.
    const journal = readFileSync(join(state, "journal.jsonl"), "utf8").trim().split("\n");
    writeFileSync(join(state, "journal.jsonl"), `${journal.filter((line) => !line.includes('"committed"')).join("\n")}\n`);
    rmSync(join(state, "results", `${first.id}.json`));
    const stale = JSON.stringify({
      type: "intent",
      id: "ghost",
      issueId: "G-1",
      worker: "w",
      parent: first.sha,
      commit: "0".repeat(40),
      paths: ["x"],
      fence: 1,
      at: new Date().toISOString(),
      gates: [],
    });
    writeFileSync(join(state, "journal.jsonl"), `${readFileSync(join(state, "journal.jsonl"), "utf8")}${stale}\n`);
    // Creating a lead changes nothing; recover() finishes the landed commit and rolls back the ghost.
    const fresh = await createCommitLead({ dir: repo, author });
    expect(existsSync(join(state, "results", `${first.id}.json`))).toBe(false);
    expect((await fresh.status()).recoveryPending.sort()).toEqual([first.id, "ghost"].sort());
    expect(await fresh.recover()).toEqual({ finished: [first.id], rolledBack: ["ghost"] });
    expect((await fresh.status()).recoveryPending).toEqual([]);
    expect(existsSync(join(state, "results", `${first.id}.json`))).toBe(true);
    expect((await fresh.status()).recentCommits).toEqual([{ id: first.id, issueId: "R-1", sha: first.sha }]);
    expect(readFileSync(join(state, "journal.jsonl"), "utf8")).toContain('"type":"aborted","id":"ghost"');
    expect(await fresh.recover()).toEqual({ finished: [], rolledBack: [] });
    await Promise.all([lead.close(), fresh.close()]);
  });

  it("brings the checkout along for a commit journaled by a lead that stopped before it synced", async () => {
    const lead = await createCommitLead({ dir: repo, author });
    dir.write({ "backend-api/src/a.ts": "a\n" });
    const first = await lead.submit({ id: "s-1", issueId: "R-1", worker: "w", files: ["src/a.ts"], message: "m" });
    if (first.status !== "committed") throw new Error("expected a commit");
    await lead.close();
    // The state a lead killed right after journaling the commit leaves: the entry still queued,
    // no outcome, and the index as it was before the commit.
    const state = join(repo, ".git/bulkhead");
    rmSync(join(state, "results", "s-1.json"));
    const queued = { id: "s-1", queuedAt: "0", issueId: "R-1", worker: "w", message: "m", files: ["src/a.ts"], gates: [] };
    writeFileSync(join(state, "queue", "s-1.json"), JSON.stringify(queued));
    git(repo, ["rm", "--cached", "-q", "src/a.ts"]);
    expect(git(repo, ["status", "--porcelain"])).toBe("D  src/a.ts\n?? src/a.ts");

    const fresh = await createCommitLead({ dir: repo, author });
    expect(git(repo, ["status", "--porcelain"])).toBe("D  src/a.ts\n?? src/a.ts");
    expect(await fresh.recover()).toEqual({ finished: ["s-1"], rolledBack: [] });
    expect(git(repo, ["status", "--porcelain"])).toBe("");
    expect(JSON.parse(readFileSync(join(state, "results", "s-1.json"), "utf8"))).toMatchObject({
      status: "committed",
      sha: first.sha,
      parent: first.parent,
      files: ["src/a.ts"],
    });
    expect(existsSync(join(state, "queue", "s-1.json"))).toBe(false);
    expect(git(repo, ["rev-list", "--count", "HEAD"])).toBe("2");
    await fresh.close();
  });

  it("waits for git's index.lock, and keeps the commit when git holds it too long", async () => {
    const lead = await createCommitLead({ dir: repo, author, lock: { indexTimeoutMs: 300 } });
    dir.write({ "backend-api/src/a.ts": "a\n", "backend-api/src/b.ts": "b\n" });
    const indexLock = join(repo, ".git", "index.lock");
    // A git process holds the index for 100 ms: the lead waits, then refreshes it.
    writeFileSync(indexLock, "");
    setTimeout(() => rmSync(indexLock), 100);
    const waited = await lead.submit({ issueId: "I-1", worker: "w", files: ["src/a.ts"], message: "a" });
    expect(waited).toMatchObject({ status: "committed" });
    expect(waited).not.toHaveProperty("indexNotRefreshed");
    expect(git(repo, ["status", "--porcelain"])).toBe("?? src/b.ts");
    // Held past the timeout: the branch has moved, so the submission is committed, with a note.
    writeFileSync(indexLock, "");
    const held = await lead.submit({ issueId: "I-2", worker: "w", files: ["src/b.ts"], message: "b" });
    expect(held).toMatchObject({ status: "committed", indexNotRefreshed: expect.stringContaining("index.lock") });
    expect(readFileSync(indexLock, "utf8")).toBe("");
    rmSync(indexLock);
    expect(git(repo, ["log", "--format=%s"])).toBe("b\na\ninitial");
    expect(git(repo, ["fsck", "--full", "--no-progress"])).toBe("");
    expect(git(repo, ["diff", "--cached", "--name-only"])).toBe("src/b.ts");
    await lead.close();
  });

  it("commits to a branch that is not checked out, with the caller's trailers, and reports the queue", async () => {
    git(repo, ["branch", "integration"]);
    const lead = await createCommitLead({ dir: repo, author, branch: "integration" });
    dir.write({ "backend-api/src/a.ts": "a\n" });
    const result = await lead.submit({
      issueId: "T-1",
      worker: "w",
      files: ["src/a.ts"],
      message: "On integration",
      trailers: { "Reviewed-By": "lead" },
    });
    expect(result).toMatchObject({ status: "committed" });
    expect(git(repo, ["log", "-1", "--format=%B", "integration"])).toBe(
      "On integration\n\nBulkhead-Issue: T-1\nBulkhead-Worker: w\nReviewed-By: lead",
    );
    expect(git(repo, ["rev-list", "--count", "main"])).toBe("1");
    expect(git(repo, ["status", "--porcelain"])).toBe("?? src/a.ts");
    expect(await lead.status()).toMatchObject({
      queue: [],
      inFlight: undefined,
      recentCommits: [expect.objectContaining({ issueId: "T-1" })],
    });
    await lead.close();
  });

  it("creates a missing branch on startAt with its first commit, in the same compare-and-swap: never a branch without its commit", async () => {
    const base = git(repo, ["rev-parse", "HEAD"]);
    const branch = "bulkhead/s1";
    const exists = () => git(repo, ["for-each-ref", `refs/heads/${branch}`]) !== "";
    const seenInGate: boolean[] = [];
    dir.write({ "backend-api/src/a.ts": "a\n" });
    const failing = await createCommitLead({
      dir: repo,
      author,
      branch,
      startAt: base,
      gates: [{ name: "fails", run: () => (seenInGate.push(exists()), { ok: false, output: "no" }) }],
    });
    // Stopped before its commit (here: a failed gate; a kill at that point is the same): no branch.
    expect(await failing.submit({ issueId: "S-1", worker: "w", files: ["src/a.ts"], message: "m" })).toMatchObject({ status: "rejected" });
    expect(seenInGate).toEqual([false]);
    expect(exists()).toBe(false);
    await failing.close();

    const lead = await createCommitLead({ dir: repo, author, branch, startAt: base });
    const result = await lead.submit({ issueId: "S-1", worker: "w", files: ["src/a.ts"], message: "m" });
    if (result.status !== "committed") throw new Error(`expected a commit: ${JSON.stringify(result)}`);
    expect(result.parent).toBe(base);
    expect(git(repo, ["rev-parse", `${result.sha}^`])).toBe(base);
    expect(git(repo, ["rev-parse", `refs/heads/${branch}`])).toBe(result.sha);
    expect(git(repo, ["rev-list", "--count", `${base}..${branch}`])).toBe("1");
    // One move in the reflog: from nothing to the commit.
    expect(readFileSync(join(repo, ".git", "logs", "refs", "heads", branch), "utf8")).toMatch(
      new RegExp(`^0{40} ${result.sha} .*\tcommit: m\n$`),
    );
    // A branch that exists is committed on as it is; startAt is only for a missing one.
    dir.write({ "backend-api/src/b.ts": "b\n" });
    const next = await lead.submit({ issueId: "S-2", worker: "w", files: ["src/b.ts"], message: "n" });
    expect(next).toMatchObject({ status: "committed", parent: result.sha });
    expect(git(repo, ["rev-parse", "HEAD"])).toBe(base);
    await lead.close();
  });

  it("builds on a branch created while its gate ran, and refuses a startAt that is not a commit", async () => {
    const base = git(repo, ["rev-parse", "HEAD"]);
    dir.write({ "backend-api/src/a.ts": "a\n" });
    git(repo, ["add", "src/a.ts"]);
    git(repo, ["commit", "-q", "-m", "other"]);
    const other = git(repo, ["rev-parse", "HEAD"]);
    git(repo, ["reset", "-q", "--hard", base]);
    const branch = "bulkhead/s2";
    dir.write({ "backend-api/src/b.ts": "b\n" });
    // Someone creates the branch between the lead's read and its compare-and-swap: the swap
    // expected no branch, so it fails and the lead rebuilds on the branch as it now is.
    const lead = await createCommitLead({
      dir: repo,
      author,
      branch,
      startAt: base,
      gates: [{ name: "race", run: () => (git(repo, ["update-ref", `refs/heads/${branch}`, other, ""]), { ok: true }) }],
    });
    const result = await lead.submit({ issueId: "S-3", worker: "w", files: ["src/b.ts"], message: "m" });
    expect(result).toMatchObject({ status: "committed", parent: other });
    expect(git(repo, ["rev-list", "--count", `${base}..${branch}`])).toBe("2");
    // The commit the failed swap would have placed is left unreachable, nothing worse.
    expect(git(repo, ["fsck", "--full", "--no-progress", "--no-dangling"])).toBe("");
    await lead.close();

    const tree = git(repo, ["rev-parse", `${base}^{tree}`]);
    await expect(createCommitLead({ dir: repo, author, branch: "bulkhead/s3", startAt: tree })).rejects.toThrow(/is not a commit in/);
    await expect(createCommitLead({ dir: repo, author, branch: "bulkhead/s3", startAt: "HEAD" })).rejects.toThrow(/40 hex/);
  });
});

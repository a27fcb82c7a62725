import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { AbortedError } from "@bulkhead/core";
import { createTempDir, git, initRepo, type TempDir } from "@bulkhead/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createCommitLead } from "./create-commit-lead.js";
import { GitConflictError } from "./git-lead-errors.js";
import { isGone, until } from "../test/process-gone.js";
import { tryAcquireLeadLock } from "./lead-lock.js";

const author = { name: "Lead", email: "lead@example.com" };

/** Everything of the repository a half-done submission could leave changed. */
function repositoryState(repo: string) {
  return {
    head: git(repo, ["rev-parse", "HEAD"]),
    refs: git(repo, ["for-each-ref", "--format=%(refname) %(objectname)"]),
    index: readFileSync(join(repo, ".git/index")).toString("base64"),
    status: git(repo, ["status", "--porcelain"]),
  };
}

function journal(repo: string): Record<string, unknown>[] {
  return readFileSync(join(repo, ".git/bulkhead/journal.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("CommitLead.submit: abortSignal", () => {
  let dir: TempDir;
  let repo: string;
  beforeEach(() => {
    dir = createTempDir();
    repo = join(dir.path, "api");
    initRepo(repo, { "src/index.ts": "export {};\n" });
    dir.write({ "api/src/a.ts": "a\n" });
  });
  afterEach(() => dir.remove());

  it("kills the running command gate and its process group, throws AbortedError, and leaves no half state", async () => {
    const marks = join(dir.path, "marks");
    dir.write({ "marks/.keep": "" });
    const gate = {
      name: "slow",
      command: ["sh", "-c", `echo $$ > ${marks}/gate.pid; sleep 1000 & echo $! > ${marks}/child.pid; wait`],
    };
    await using lead = await createCommitLead({ dir: repo, author, gates: [gate] });
    const before = repositoryState(repo);
    const controller = new AbortController();
    const pending = lead.submit({ issueId: "AB-1", worker: "w", files: ["src/a.ts"], message: "m", abortSignal: controller.signal });
    await until(() => existsSync(join(marks, "child.pid")) && readFileSync(join(marks, "child.pid"), "utf8").trim() !== "");
    const gatePid = Number(readFileSync(join(marks, "gate.pid"), "utf8"));
    const childPid = Number(readFileSync(join(marks, "child.pid"), "utf8"));
    expect(isGone(gatePid) || isGone(childPid)).toBe(false);
    controller.abort(new Error("operator stop"));

    const error = await pending.then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(AbortedError.isInstance(error)).toBe(true);
    expect((error as AbortedError).cause).toMatchObject({ message: "operator stop" });
    // The gate and what it started in the background are both killed.
    await until(() => isGone(gatePid) && isGone(childPid));

    expect(repositoryState(repo)).toEqual(before);
    const last = journal(repo).at(-1);
    expect(last).toMatchObject({ type: "rejected", issueId: "AB-1", aborted: true, reason: "its submitter aborted while gate slow ran" });
    expect(journal(repo).some((entry) => entry.type === "intent")).toBe(false);
    expect(await lead.status()).toMatchObject({ queue: [], inFlight: undefined, recoveryPending: [] });

    // Consistent afterwards: the same change, submitted again without a slow gate, commits.
    await using next = await createCommitLead({ dir: repo, author });
    expect(await next.submit({ issueId: "AB-1", worker: "w", files: ["src/a.ts"], message: "m" })).toMatchObject({ status: "committed" });
    expect(git(repo, ["status", "--porcelain"])).toBe("");
  });

  it("hands the function gate the signal, ends with AbortedError, and never starts with a signal already aborted", async () => {
    let seen: AbortSignal | undefined;
    await using lead = await createCommitLead({
      dir: repo,
      author,
      gates: [
        {
          name: "waits",
          run: ({ abortSignal }) => {
            seen = abortSignal;
            return new Promise<never>(() => {});
          },
        },
      ],
    });
    const controller = new AbortController();
    const pending = lead.submit({ issueId: "AB-2", worker: "w", files: ["src/a.ts"], message: "m", abortSignal: controller.signal });
    await until(() => seen !== undefined);
    controller.abort();
    await expect(pending).rejects.toSatisfy((error: unknown) => AbortedError.isInstance(error));
    expect(seen?.aborted).toBe(true);
    expect(git(repo, ["rev-list", "--count", "HEAD"])).toBe("1");

    const queueBefore = existsSync(join(repo, ".git/bulkhead/queue")) ? readdirSync(join(repo, ".git/bulkhead/queue")) : [];
    await expect(
      lead.submit({ issueId: "AB-3", worker: "w", files: ["src/a.ts"], message: "m", abortSignal: AbortSignal.abort() }),
    ).rejects.toSatisfy((error: unknown) => AbortedError.isInstance(error));
    expect(existsSync(join(repo, ".git/bulkhead/queue")) ? readdirSync(join(repo, ".git/bulkhead/queue")) : []).toEqual(queueBefore);
  });

  it("withdraws a submission waiting for another lead: that lead refuses it instead of committing it", async () => {
    const state = join(repo, ".git/bulkhead");
    // Another lead (live: this process) holds the lock, so the submission waits in the queue.
    const other = (await tryAcquireLeadLock(state))!;
    await using lead = await createCommitLead({ dir: repo, author });
    const controller = new AbortController();
    const queued = new Promise<void>((resolve) => lead.once("submission-queued", () => resolve()));
    const pending = lead.submit({
      id: "waiting",
      issueId: "AB-4",
      worker: "w",
      files: ["src/a.ts"],
      message: "m",
      abortSignal: controller.signal,
    });
    await queued;
    controller.abort();
    await expect(pending).rejects.toSatisfy((error: unknown) => AbortedError.isInstance(error));
    expect(readdirSync(join(state, "queue")).sort()).toEqual(["waiting.json", "waiting.withdrawn"]);
    await other.release();

    dir.write({ "api/src/b.ts": "b\n" });
    expect(await lead.submit({ issueId: "AB-5", worker: "w", files: ["src/b.ts"], message: "b" })).toMatchObject({ status: "committed" });
    expect(journal(repo).find((entry) => entry.id === "waiting")).toMatchObject({ type: "rejected", aborted: true });
    expect(git(repo, ["log", "--format=%s"])).toBe("b\ninitial");
    expect(readdirSync(join(state, "queue"))).toEqual([]);
  });

  it("close() withdraws a submission still waiting, refuses later ones, and leaves the queue to the next lead", async () => {
    const state = join(repo, ".git/bulkhead");
    const other = (await tryAcquireLeadLock(state))!;
    const lead = await createCommitLead({ dir: repo, author });
    const queued = new Promise<void>((resolve) => lead.once("submission-queued", () => resolve()));
    const pending = lead.submit({ id: "left", issueId: "CL-1", worker: "w", files: ["src/a.ts"], message: "m" });
    await queued;
    await lead.close();
    await expect(pending).rejects.toSatisfy((error: unknown) => AbortedError.isInstance(error));
    await expect(lead.submit({ issueId: "CL-2", worker: "w", files: ["src/a.ts"], message: "m" })).rejects.toThrow(/is closed/);
    expect(readdirSync(join(state, "queue")).sort()).toEqual(["left.json", "left.withdrawn"]);
    await other.release();
    await using next = await createCommitLead({ dir: repo, author });
    expect(await next.recover()).toEqual({ finished: [], rolledBack: [] });
    dir.write({ "api/src/b.ts": "b\n" });
    expect(await next.submit({ issueId: "CL-3", worker: "w", files: ["src/b.ts"], message: "b" })).toMatchObject({ status: "committed" });
    expect(journal(repo).find((entry) => entry.id === "left")).toMatchObject({ type: "rejected", aborted: true });
  });

  it("recover() waits for a live lead: abortSignal ends the wait with AbortedError, timeoutMs with GitConflictError", async () => {
    const other = (await tryAcquireLeadLock(join(repo, ".git/bulkhead")))!;
    await using lead = await createCommitLead({ dir: repo, author });
    const controller = new AbortController();
    const pending = lead.recover({ abortSignal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toSatisfy((error: unknown) => AbortedError.isInstance(error));
    await expect(lead.recover({ timeoutMs: 0 })).rejects.toBeInstanceOf(GitConflictError);
    await other.release();
    expect(await lead.recover()).toEqual({ finished: [], rolledBack: [] });
  });
});

import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { createTempDir } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { createMultiRepoGuard } from "./multi-repo-guard.js";
import { fromProposalChange } from "./proposal-change.js";
import { createFileProposalStore, createMemoryProposalStore } from "./proposal-store.js";
import type { Proposal } from "./proposal.js";

const run = promisify(execFile);
const worker = new URL("../test/guard-worker.ts", import.meta.url).pathname;

async function inProcess(args: string[]): Promise<Record<string, string>> {
  const { stdout } = await run(process.execPath, ["--import", "tsx", worker, ...args], { cwd: join(import.meta.dirname, "..") });
  return JSON.parse(stdout) as Record<string, string>;
}

describe("MultiRepoGuard", () => {
  it("allows the primary repo and holds other repos as pending proposals", async () => {
    const guard = createMultiRepoGuard({ primaryRepo: "backend-api", store: createMemoryProposalStore() });
    const events: string[] = [];
    guard.on("proposal-pending", ({ proposal }) => events.push(`pending ${proposal.repo}/${proposal.file}`));
    guard.on("proposal-approved", ({ proposal }) => events.push(`approved ${proposal.id === held.id}`));
    expect(await guard.propose({ repo: "backend-api", file: "src/middleware/rate-limit.ts", diff: "+x" })).toEqual({ status: "allowed" });
    expect(await guard.requiresHumanApproval()).toBe(false);
    const result = await guard.propose({ repo: "frontend", file: "./src/api.ts", diff: "+429", author: "agent-1" });
    expect(result).toMatchObject({ status: "pending", reason: "cross-repo" });
    const [held] = (await guard.pending()) as [Proposal];
    expect(held).toMatchObject({ repo: "frontend", file: "src/api.ts", diff: "+429", author: "agent-1", status: "pending" });
    expect(await guard.requiresHumanApproval()).toBe(true);
    expect(await guard.propose({ repo: "frontend", file: "src/api.ts", diff: "+429" })).toEqual(result);
    expect(await guard.pending()).toHaveLength(1);
    const approved = await guard.approve({ id: held.id, by: "ana" });
    expect(approved).toMatchObject({ status: "approved", decidedBy: "ana" });
    expect(await guard.requiresHumanApproval()).toBe(false);
    expect(events).toEqual(["pending frontend/src/api.ts", "approved true"]);
    // The approved change, submitted again, goes through; a different diff is held anew.
    expect(await guard.propose({ repo: "frontend", file: "src/api.ts", diff: "+429" })).toEqual({
      status: "allowed",
      approved: { id: held.id, by: "ana" },
    });
    expect(await guard.propose({ repo: "frontend", file: "src/api.ts", diff: "+500" })).toMatchObject({ status: "pending" });
  });

  it("remembers a rejection: the same change proposed again is refused with the earlier reason, never held again", async () => {
    const guard = createMultiRepoGuard({ primaryRepo: "backend-api", store: createMemoryProposalStore() });
    const first = await guard.propose({ repo: "frontend", file: "src/api.ts", diff: "+429" });
    if (first.status !== "pending") throw new Error("expected a pending proposal");
    await guard.reject({ id: first.id, by: "ana", reason: "the frontend owns its client" });
    const again = await guard.propose({ repo: "frontend", file: "./src/api.ts", diff: "+429" });
    expect(again).toEqual({
      status: "refused",
      id: first.id,
      reason: "cross-repo",
      rejection: { by: "ana", at: expect.any(String), reason: "the frontend owns its client" },
    });
    expect(await guard.pending()).toEqual([]);
    expect(await guard.proposals()).toHaveLength(1);
    // A different change to the same file is a new question.
    expect(await guard.propose({ repo: "frontend", file: "src/api.ts", diff: "+503" })).toMatchObject({ status: "pending" });
  });

  it("keeps the whole change and where it lands, and records the landing once", async () => {
    const guard = createMultiRepoGuard({ primaryRepo: "backend-api", store: createMemoryProposalStore() });
    const bytes = new Uint8Array([0, 1, 2, 255]);
    const target = { source: "/srv/frontend", branch: "bulkhead/s1", baseSha: "a".repeat(40), issueId: "T-1", session: "s1" };
    const result = await guard.propose({
      repo: "frontend",
      file: "logo.bin",
      diff: "Binary files differ",
      change: { path: "logo.bin", kind: "added", entry: { type: "file", mode: "100644", bytes, oid: "b".repeat(40) } },
      target,
    });
    if (result.status !== "pending") throw new Error("expected a pending proposal");
    const held = (await guard.get(result.id))!;
    expect(held.target).toEqual(target);
    expect(fromProposalChange(held.file, held.change!)).toEqual({
      path: "logo.bin",
      kind: "added",
      entry: { type: "file", mode: "100644", bytes, oid: "b".repeat(40) },
    });
    const landing = { type: "commit" as const, repo: "frontend", branch: "bulkhead/s1", sha: "c".repeat(40), at: new Date().toISOString() };
    await expect(guard.recordLanding({ id: result.id, landing })).rejects.toMatchObject({ code: "PROPOSAL_ALREADY_DECIDED" });
    await guard.approve({ id: result.id, by: "ana" });
    expect((await guard.recordLanding({ id: result.id, landing })).landed).toEqual(landing);
    await expect(guard.recordLanding({ id: result.id, landing })).rejects.toMatchObject({ code: "PROPOSAL_ALREADY_DECIDED" });
    await expect(
      guard.propose({
        repo: "frontend",
        file: "x",
        diff: "",
        change: { path: "x", kind: "modified" } as never,
        target: { source: "" } as never,
      }),
    ).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });

  it("holds writes outside the scope and passes allowed cross-repo writes", async () => {
    const scope = { canWrite: (repo: string, path: string) => repo !== "backend-api" || path.startsWith("src/middleware/") };
    const guard = createMultiRepoGuard({
      primaryRepo: "backend-api",
      allowedWrites: ["shared-types"],
      scope,
      store: createMemoryProposalStore(),
    });
    expect(await guard.propose({ repo: "backend-api", file: "src/middleware/a.ts", diff: "" })).toEqual({ status: "allowed" });
    expect(await guard.propose({ repo: "shared-types", file: "index.ts", diff: "" })).toEqual({ status: "allowed" });
    expect(await guard.propose({ repo: "backend-api", file: "src/routes/admin.ts", diff: "" })).toMatchObject({
      status: "pending",
      reason: "out-of-scope",
    });
    expect(await guard.propose({ repo: "backend-api", file: "../frontend/x.ts", diff: "" })).toMatchObject({
      status: "pending",
      reason: "out-of-scope",
    });
  });

  it("refuses deciding twice, unknown ids and bad input with clear errors", async () => {
    const guard = createMultiRepoGuard({ primaryRepo: "backend-api", store: createMemoryProposalStore() });
    const result = await guard.propose({ repo: "frontend", file: "a.ts", diff: "+a" });
    if (result.status !== "pending") throw new Error("expected a pending proposal");
    const events: string[] = [];
    guard.on("proposal-rejected", ({ proposal }) => events.push(`rejected ${proposal.id === result.id} ${proposal.rejectionReason}`));
    const rejected = await guard.reject({ id: result.id, by: "ana", reason: "frontend owns its API client" });
    expect(events).toEqual(["rejected true frontend owns its API client"]);
    expect(rejected).toMatchObject({ status: "rejected", rejectionReason: "frontend owns its API client" });
    await expect(guard.approve({ id: result.id, by: "bo" })).rejects.toMatchObject({
      code: "PROPOSAL_ALREADY_DECIDED",
      message: expect.stringContaining(`proposal "${result.id}" was already rejected by ana`),
    });
    await expect(guard.approve({ id: "p-nope", by: "bo" })).rejects.toThrow(
      'no proposal "p-nope": list pending proposals with guard.pending()',
    );
    await expect(guard.approve({ id: result.id, by: "" })).rejects.toThrow("invalid decision: by: say who decides");
    await expect(guard.propose({ repo: "front end", file: "a.ts", diff: "" })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(() => createMultiRepoGuard({ primaryRepo: "" })).toThrow("invalid options: primaryRepo: expected a repo name");
  });

  it("persists proposals in a file store that a new guard reads back", async () => {
    await using dir = createTempDir();
    const store = () => createFileProposalStore(dir.path);
    const first = createMultiRepoGuard({ primaryRepo: "backend-api", store: store() });
    const result = await first.propose({ repo: "frontend", file: "src/api.ts", diff: "+429" });
    const second = createMultiRepoGuard({ primaryRepo: "backend-api", store: store() });
    expect((await second.pending()).map((proposal) => proposal.file)).toEqual(["src/api.ts"]);
    expect(result.status).toBe("pending");
    await second.approve({ id: (result as { id: string }).id, by: "ana" });
    expect(await first.pending()).toEqual([]);
    expect(readdirSync(dir.path).filter((name) => !name.endsWith(".json"))).toEqual([]);
  });

  it("shares state safely between two processes", async () => {
    await using dir = createTempDir();
    const proposed = await Promise.all([inProcess(["propose", dir.path, "one", "15"]), inProcess(["propose", dir.path, "two", "15"])]);
    expect(Object.values({ ...proposed[0], ...proposed[1] })).toEqual(Array(30).fill("pending"));
    const guard = createMultiRepoGuard({ primaryRepo: "backend-api", store: createFileProposalStore(dir.path) });
    const pending = await guard.pending();
    expect(pending).toHaveLength(30);
    for (const name of readdirSync(dir.path)) expect(() => JSON.parse(readFileSync(join(dir.path, name), "utf8"))).not.toThrow();

    const ids = pending.map((proposal) => proposal.id);
    const decided = await Promise.all([inProcess(["approve", dir.path, "one", ...ids]), inProcess(["approve", dir.path, "two", ...ids])]);
    for (const id of ids) {
      expect([decided[0]![id], decided[1]![id]].sort()).toEqual(["PROPOSAL_ALREADY_DECIDED", "approved"]);
    }
    const final = await guard.proposals();
    expect(final.every((proposal) => proposal.status === "approved")).toBe(true);
    for (const proposal of final) expect(proposal.decidedBy).toBe(decided[0]![proposal.id] === "approved" ? "one" : "two");
  });
});

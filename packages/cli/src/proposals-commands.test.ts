// Proposals as reviewable changes that land: the guard holds a cross-repo edit with a unified diff
// and the whole new content; `proposals approve` commits exactly that change in the trusted source
// repository through its lead, with the approval in the trailers; a rejection is remembered.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createFileProposalStore, createMultiRepoGuard } from "@bulkhead/core";
import { createCommitLead } from "@bulkhead/git-lead";
import { createTempDir, git, initRepo } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { main } from "./main.js";

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, { stdout: (text) => void (out += text), stderr: (text) => void (err += text), progress: () => undefined });
  return { code, out, err };
}

const project = (agent: string) =>
  `name: approvals\nrepos:\n  - name: backend-api\n    path: backend-api\n  - name: frontend\n    path: frontend\nimage:\n  files:\n    rootfs/bin/busybox: /bin/busybox\n    rootfs/agent.sh: ${agent}\n  dockerfile: |\n    FROM scratch\n    COPY rootfs/ /\n    RUN ["/bin/busybox", "--install", "-s", "/bin"]\n    RUN ["/bin/busybox", "mkdir", "-p", "-m", "1777", "/tmp"]\nagent:\n  command: ["/bin/sh", "/agent.sh"]\n`;

describe("bulkhead proposals (end to end)", () => {
  it("dispatch → the guard holds the frontend edit → proposals approve → exactly one frontend commit with the approval in its trailers", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "backend-api"), { "src/index.ts": "export {};\n" });
    const frontend = join(dir.path, "frontend");
    initRepo(frontend, { "src/api.ts": "export {};\n" });
    const base = git(frontend, ["rev-parse", "HEAD"]);
    writeFileSync(join(dir.path, "bulkhead.yaml"), project(new URL("../test/agent.sh", import.meta.url).pathname));
    writeFileSync(
      join(dir.path, "handover.yaml"),
      `task: "Add a limit"\nid: LIMIT-7\ncontext_scope:\n  repos:\n    - name: backend-api\n      paths: ["src/"]\n  max_files: 10\n  max_tokens: 10000\nownership:\n  primary_repo: backend-api\nbudgets:\n  context_read: 5000\n  session_total: 100000\n`,
    );
    process.env.BULKHEAD_HOME = join(dir.path, "home");
    try {
      const dispatched = await cli(["dispatch", join(dir.path, "bulkhead.yaml"), "--spec", join(dir.path, "handover.yaml"), "--json"]);
      expect(dispatched.code).toBe(0);
      const { session } = JSON.parse(dispatched.out) as { session: string };
      const harvested = await cli(["finish", session, "--out", join(dir.path, "handover.md"), "--json"]);
      expect(harvested.code).toBe(2);
      const [held] = (JSON.parse(harvested.out) as { held: { repo: string; file: string; id: string }[] }).held;
      expect(held).toMatchObject({ repo: "frontend", file: "src/api.ts" });

      // Listed and shown as a real diff against the base.
      const listed = JSON.parse((await cli(["proposals", "list", "--json"])).out) as { id: string; status: string }[];
      expect(listed).toEqual([expect.objectContaining({ id: held!.id, status: "pending", repo: "frontend", file: "src/api.ts" })]);
      const shown = await cli(["proposals", "show", held!.id]);
      expect(shown.code).toBe(0);
      expect(shown.out).toContain("--- a/src/api.ts\n+++ b/src/api.ts\n@@ -1,1 +1,2 @@\n export {};\n+// retry on 429");
      expect(shown.out).toContain(`lands in: ${frontend} on bulkhead/${session} (issue LIMIT-7)`);
      expect(JSON.parse((await cli(["proposals", "show", held!.id, "--json"])).out)).toMatchObject({ id: held!.id, status: "pending" });
      // Nothing landed in the frontend yet.
      expect(git(frontend, ["for-each-ref", "refs/heads"])).not.toContain("bulkhead/");

      const approved = await cli(["proposals", "approve", held!.id, "--by", "ana", "--json"]);
      expect(approved.code).toBe(0);
      const landed = (JSON.parse(approved.out) as { landed: { type: string; sha: string; branch: string } }).landed;
      expect(landed).toMatchObject({ type: "commit", branch: `bulkhead/${session}` });
      // Exactly one commit on the base, in the source repository, with the approval in its trailers.
      expect(git(frontend, ["rev-list", "--count", `${base}..refs/heads/bulkhead/${session}`])).toBe("1");
      expect(git(frontend, ["rev-parse", `refs/heads/bulkhead/${session}`])).toBe(landed.sha);
      expect(git(frontend, ["show", `${landed.sha}:src/api.ts`])).toBe("export {};\n// retry on 429");
      const trailer = (key: string) => git(frontend, ["log", "-1", `--format=%(trailers:key=${key},valueonly)`, landed.sha]);
      expect(trailer("Bulkhead-Proposal")).toBe(held!.id);
      expect(trailer("Approved-By")).toBe("ana");
      expect(trailer("Approved-At")).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(trailer("Bulkhead-Issue")).toBe("LIMIT-7");
      // The user's checkout is untouched; the repository is sound.
      expect(git(frontend, ["rev-parse", "HEAD"])).toBe(base);
      expect(git(frontend, ["status", "--porcelain"])).toBe("");
      expect(git(frontend, ["fsck", "--no-progress", "--strict"])).toBe("");

      // Approving again lands nothing more; rejecting a decided proposal is refused (exit 2).
      expect((await cli(["proposals", "approve", held!.id, "--by", "ana"])).code).toBe(0);
      expect(git(frontend, ["rev-list", "--count", `${base}..refs/heads/bulkhead/${session}`])).toBe("1");
      const late = await cli(["proposals", "reject", held!.id, "--by", "bo", "--reason", "too late"]);
      expect(late).toMatchObject({ code: 2, err: expect.stringContaining("already approved by ana") });
      expect(JSON.parse((await cli(["proposals", "list", "--json"])).out)).toEqual([]);
      expect(JSON.parse((await cli(["proposals", "list", "--status", "approved", "--json"])).out)).toHaveLength(1);
    } finally {
      delete process.env.BULKHEAD_HOME;
    }
  });
});

describe("bulkhead proposals (decisions)", () => {
  it("remembers a rejection: the same change proposed again is refused with the earlier reason; lead status no longer lists it as held", async () => {
    await using dir = createTempDir();
    const store = join(dir.path, "proposals");
    const repo = join(dir.path, "web");
    initRepo(repo, { "src/client.ts": "export const a = 1;\n" });
    const guard = createMultiRepoGuard({ primaryRepo: "api", store: createFileProposalStore(store) });
    // A lead with the guard holds the cross-repo submission.
    const lead = await createCommitLead({ dir: repo, repo: "web", author: { name: "Lead", email: "lead@example.com" }, guard });
    dir.write({ "web/src/client.ts": "export const a = 2;\n" });
    const submitted = await lead.submit({ issueId: "WEB-1", worker: "agent-1", message: "Bump a", files: ["src/client.ts"] });
    await lead.close();
    expect(submitted.status).toBe("held");
    const proposalId = submitted.status === "held" ? submitted.proposals[0]!.proposalId : "";
    const heldBefore = JSON.parse((await cli(["lead", "status", repo, "--store", store, "--json"])).out) as { held: unknown[] };
    expect(heldBefore.held).toHaveLength(1);

    const missingReason = await cli(["proposals", "reject", proposalId, "--by", "ana", "--store", store]);
    expect(missingReason).toMatchObject({ code: 1, err: expect.stringContaining("--reason") });
    const rejected = await cli([
      "proposals",
      "reject",
      proposalId,
      "--by",
      "ana",
      "--reason",
      "web owns its client",
      "--store",
      store,
      "--json",
    ]);
    expect(rejected.code).toBe(0);
    expect(JSON.parse(rejected.out)).toMatchObject({ status: "rejected", rejectionReason: "web owns its client" });

    // The same change again: refused with the reason, not a new pending proposal.
    const again = await createCommitLead({ dir: repo, repo: "web", author: { name: "Lead", email: "lead@example.com" }, guard });
    const resubmitted = await again.submit({ issueId: "WEB-1", worker: "agent-1", message: "Bump a", files: ["src/client.ts"] });
    await again.close();
    expect(resubmitted.status).toBe("held");
    const diff = (await guard.get(proposalId))!.diff;
    expect(await guard.propose({ repo: "web", file: "src/client.ts", diff })).toEqual({
      status: "refused",
      id: proposalId,
      reason: "cross-repo",
      rejection: { by: "ana", at: expect.any(String), reason: "web owns its client" },
    });
    expect(await guard.pending()).toEqual([]);
    expect(git(repo, ["rev-list", "--count", "HEAD"])).toBe("1");

    const status = JSON.parse((await cli(["lead", "status", repo, "--store", store, "--json"])).out) as {
      held: unknown[];
      decided: { decisions: { status: string; reason?: string }[] }[];
    };
    expect(status.held).toEqual([]);
    expect(status.decided.flatMap((entry) => entry.decisions)).toEqual(
      expect.arrayContaining([expect.objectContaining({ status: "rejected", reason: "web owns its client" })]),
    );
    // Approving a rejected proposal is refused (exit 2), an unknown id is wrong usage (exit 1).
    expect((await cli(["proposals", "approve", proposalId, "--by", "bo", "--store", store])).code).toBe(2);
    const unknown = await cli(["proposals", "show", "p-nope", "--store", store, "--json"]);
    expect(unknown.code).toBe(1);
    expect(JSON.parse(unknown.out).error.message).toContain('no proposal "p-nope"');
  });

  it("a lead with a guard holds a unified diff against its branch tip, and an approval lands as one commit on that branch", async () => {
    await using dir = createTempDir();
    const store = join(dir.path, "proposals");
    const repo = join(dir.path, "web");
    initRepo(repo, { "src/client.ts": "export const a = 1;\nexport const b = 2;\n" });
    const base = git(repo, ["rev-parse", "HEAD"]);
    const guard = createMultiRepoGuard({ primaryRepo: "api", store: createFileProposalStore(store) });
    const lead = await createCommitLead({ dir: repo, repo: "web", author: { name: "Lead", email: "lead@example.com" }, guard });
    dir.write({ "web/src/client.ts": "export const a = 1;\nexport const b = 3;\n" });
    const submitted = await lead.submit({ issueId: "WEB-3", worker: "agent-1", message: "Bump b", files: ["src/client.ts"] });
    await lead.close();
    if (submitted.status !== "held") throw new Error(`expected held, got ${submitted.status}`);
    const id = submitted.proposals[0]!.proposalId;
    const shown = await cli(["proposals", "show", id, "--store", store]);
    expect(shown.out).toContain(
      "--- a/src/client.ts\n+++ b/src/client.ts\n@@ -1,2 +1,2 @@\n export const a = 1;\n-export const b = 2;\n+export const b = 3;",
    );
    expect(shown.out).not.toContain("+++ src/client.ts");
    const approved = await cli(["proposals", "approve", id, "--by", "ana", "--store", store, "--json"]);
    expect(approved.code).toBe(0);
    const { sha } = (JSON.parse(approved.out) as { landed: { sha: string } }).landed;
    expect(git(repo, ["rev-list", "--count", `${base}..${sha}`])).toBe("1");
    expect(git(repo, ["rev-parse", "HEAD"])).toBe(sha);
    expect(git(repo, ["show", `${sha}:src/client.ts`])).toBe("export const a = 1;\nexport const b = 3;");
    expect(git(repo, ["log", "-1", "--format=%(trailers:key=Approved-By,valueonly)", sha])).toBe("ana");
    const status = JSON.parse((await cli(["lead", "status", repo, "--store", store, "--json"])).out) as { held: unknown[] };
    expect(status.held).toEqual([]);
  });

  it("an approval whose repository is not reachable becomes a follow-up task on the work hook", async () => {
    await using dir = createTempDir();
    const store = join(dir.path, "proposals");
    const guard = createMultiRepoGuard({ primaryRepo: "api", store: createFileProposalStore(store) });
    const outcome = await guard.propose({
      repo: "web",
      file: "src/x.ts",
      diff: "+x",
      target: { source: join(dir.path, "gone"), branch: "main", baseSha: "0".repeat(40), issueId: "WEB-2" },
      change: {
        path: "src/x.ts",
        kind: "added",
        entry: { type: "file", mode: "100644", bytes: new TextEncoder().encode("x\n"), oid: "587be6b4c3f93f93c489c0111bba5596147a26cb" },
      },
    });
    if (outcome.status !== "pending") throw new Error("expected a pending proposal");
    const hook = join(dir.path, "hook");
    const approved = await cli(["proposals", "approve", outcome.id, "--by", "ana", "--store", store, "--hook", hook, "--json"]);
    expect(approved.code).toBe(0);
    expect(JSON.parse(approved.out).landed).toMatchObject({ type: "follow-up", taskId: `apply-${outcome.id}`, hook });
    const ready = JSON.parse((await cli(["hook", "ready", hook, "--json"])).out) as { id: string; payload: { why: string } }[];
    expect(ready).toEqual([expect.objectContaining({ id: `apply-${outcome.id}` })]);
    expect(ready[0]!.payload.why).toContain("is not a git repository this host can reach");
  });
});

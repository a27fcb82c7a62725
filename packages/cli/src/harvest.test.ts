// harvest() over a hostile workspace, on the real engine: the agent's clone names commands in its
// git config, hooks and attributes, and links to host paths; the harvest commits in the source
// repository from the change set's bytes, holds the cross-repo edit with a full unified diff, and
// nothing the agent wrote runs on the host.
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { createMemoryProposalStore, createMultiRepoGuard, parseTaskSpec } from "@bulkhead/core";
import { createSession, defineProject } from "@bulkhead/sandbox";
import { createTempDir, git, initRepo } from "@bulkhead/test-utils";
import { describe, expect, inject, it } from "vitest";
import { harvest } from "./harvest.js";

const image = inject("testImage");

describe("harvest() (library)", () => {
  it("commits the primary repo in its source from the change set's bytes, holds the other repo's edit, runs nothing the agent wrote", async () => {
    await using dir = createTempDir();
    const api = join(dir.path, "api");
    const web = join(dir.path, "web");
    initRepo(api, { "src/index.ts": "export {};\n", "README.md": "# api\n" });
    initRepo(web, { "src/client.ts": "export const a = 1;\nexport const b = 2;\n" });
    const canaries = join(dir.path, "canaries");
    mkdirSync(canaries);
    const touch = (name: string) => `touch ${join(canaries, name)}`;
    const project = defineProject({
      name: "harvest",
      repos: [
        { name: "api", path: api },
        { name: "web", path: web },
      ],
      image: { existing: image },
    });
    await using session = await createSession(project, { home: join(dir.path, "home") });
    const script = [
      "cd /workspace/api",
      `printf '[core]\\n\\tfsmonitor = ${touch("fsmonitor")}; false\\n[filter "x=y"]\\n\\tclean = ${touch("clean")}; cat\\n\\tsmudge = ${touch("smudge")}; cat\\n' >> .git/config`,
      "mkdir -p .git/info && echo '* filter=x=y' > .git/info/attributes",
      `printf '#!/bin/sh\\n${touch("hook")}\\n' > .git/hooks/post-checkout && chmod +x .git/hooks/post-checkout`,
      "echo 'export const limit = 100;' > src/limit.ts",
      "rm README.md",
      "ln -s /etc/shadow src/shadow",
      `printf 'new\\nline' > "$(printf 'odd\\nname.ts')"`,
      "cd /workspace/web",
      "printf 'export const a = 1;\\nexport const b = 3;\\n' > src/client.ts",
    ].join(" && ");
    expect(await session.exec(["/bin/sh", "-c", script])).toMatchObject({ exitCode: 0 });
    const spec = parseTaskSpec(
      "task: Add a limit\nid: LIMIT-9\ncontext_scope:\n  repos:\n    - name: api\n      paths: ['src/']\n  max_files: 50\n  max_tokens: 10000\nownership:\n  primary_repo: api\n",
    );
    const guard = createMultiRepoGuard({ primaryRepo: "api", store: createMemoryProposalStore() });
    const before = git(api, ["rev-parse", "HEAD"]);
    const author = { name: "Lead", email: "lead@example.com" };
    const result = await harvest({ session, spec, guard, author });

    expect(readdirSync(canaries)).toEqual([]);
    const [commit] = result.commits;
    expect(result.commits).toHaveLength(1);
    expect(commit).toMatchObject({ repo: "api", branch: `bulkhead/${session.id}` });
    // In the source repository, on the session's branch; its main branch and checkout untouched.
    expect(git(api, ["rev-parse", `refs/heads/bulkhead/${session.id}`])).toBe(commit!.sha);
    expect(git(api, ["rev-parse", "HEAD"])).toBe(before);
    expect(git(api, ["rev-parse", `${commit!.sha}^`])).toBe(before);
    expect(git(api, ["status", "--porcelain"])).toBe("");
    const names = execFileSync("git", ["-C", api, "diff-tree", "-r", "-z", "--no-commit-id", "--name-status", commit!.sha], {
      encoding: "utf8",
    })
      .split("\0")
      .filter(Boolean);
    expect(names).toEqual(["D", "README.md", "A", "src/limit.ts", "A", "src/shadow"]);
    expect(git(api, ["cat-file", "-p", `${commit!.sha}:src/shadow`])).toBe("/etc/shadow");
    expect(git(api, ["ls-tree", commit!.sha, "src/shadow"])).toMatch(/^120000 /);
    expect(git(api, ["log", "-1", "--format=%(trailers:key=Bulkhead-Issue,valueonly)", commit!.sha])).toBe("LIMIT-9");
    // The other repo's edit is held, with a unified diff against the base that keeps the whole
    // file; so is the name with a newline (the guard holds names with control characters).
    expect(result.held).toEqual([
      { repo: "api", file: "odd\nname.ts", id: expect.any(String) },
      { repo: "web", file: "src/client.ts", id: expect.any(String) },
    ]);
    const proposal = (await guard.proposals()).find((entry) => entry.repo === "web");
    expect(proposal!.diff).toContain("@@ -1,2 +1,2 @@\n export const a = 1;\n-export const b = 2;\n+export const b = 3;\n");
    expect(git(web, ["for-each-ref", "refs/heads"])).not.toContain("bulkhead/");
    // The handover lists the change set, committed and held.
    expect(result.handover.filesChanged.map((file) => `${file.repo} ${file.change} ${file.path} ${file.state}`)).toEqual([
      "api deleted README.md committed",
      "api added odd\nname.ts uncommitted",
      "api added src/limit.ts committed",
      "api added src/shadow committed",
      "web modified src/client.ts uncommitted",
    ]);
    expect(result.handover.status).toBe("partial");
    // Harvested again (as a new process would after a crash): the same commit, no second one.
    const again = await harvest({ session, spec, guard, author });
    expect(again.commits.map((entry) => entry.sha)).toEqual([commit!.sha]);
    expect(git(api, ["rev-list", "--count", `${before}..refs/heads/bulkhead/${session.id}`])).toBe("1");
    for (const repo of [api, web]) expect(git(repo, ["fsck", "--no-progress", "--strict"])).toBe("");
    expect(readdirSync(canaries)).toEqual([]);
  });

  it("leaves no branch in the source repo when the lead stops before its commit (a failed gate, a kill there)", async () => {
    await using dir = createTempDir();
    const api = join(dir.path, "api");
    initRepo(api, { "src/index.ts": "export {};\n" });
    const base = git(api, ["rev-parse", "HEAD"]);
    const project = defineProject({ name: "harvest-gate", repos: [{ name: "api", path: api }], image: { existing: image } });
    await using session = await createSession(project, { home: join(dir.path, "home") });
    expect(await session.exec(["/bin/sh", "-c", "echo 'export const a = 1;' > /workspace/api/src/a.ts"])).toMatchObject({ exitCode: 0 });
    const spec = parseTaskSpec(
      "task: Add a\nid: GATE-1\ncontext_scope:\n  repos:\n    - name: api\n      paths: ['src/']\n  max_files: 50\n  max_tokens: 10000\nownership:\n  primary_repo: api\n",
    );
    const guard = createMultiRepoGuard({ primaryRepo: "api", store: createMemoryProposalStore() });
    const author = { name: "Lead", email: "lead@example.com" };
    await expect(harvest({ session, spec, guard, author, gates: [{ name: "fails", command: ["false"] }] })).rejects.toThrow(
      /did not commit the agent's changes in api \(gate fails failed\)/,
    );
    // No branch at the base without its commit (the lead's commit is what creates the branch), and the main branch untouched.
    expect(git(api, ["for-each-ref", "refs/heads"]).split("\n")).toEqual([`${base} commit\trefs/heads/main`]);
  });
});

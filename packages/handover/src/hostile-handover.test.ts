import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseTaskSpec, type ChangedPath, type ChangeSet } from "@bulkhead/core";
import { createTempDir, git, initRepo, type TempDir } from "@bulkhead/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { assessCompletion } from "./assess-completion.js";
import { buildHandover } from "./build-handover.js";
import { renderHandover } from "./render-handover.js";

const spec = parseTaskSpec(`
task: "Add rate limiting"
context_scope:
  repos:
    - name: backend-api
      paths: ["src/"]
  max_files: 15
  max_tokens: 50000
ownership:
  primary_repo: backend-api
`);

const blobOid = (bytes: Uint8Array) => createHash("sha1").update(`blob ${bytes.byteLength}\0`).update(bytes).digest("hex");
const fileChange = (path: string, text: string, kind: "added" | "modified", base?: string): ChangedPath => {
  const bytes = Buffer.from(text);
  return {
    path,
    kind,
    entry: { type: "file", mode: "100644", bytes, oid: blobOid(bytes) },
    ...(base === undefined ? {} : { base: { mode: "100644" as const, oid: blobOid(Buffer.from(base)) } }),
  };
};

describe("handover, with an agent's clone armed against the host", () => {
  let dir: TempDir;
  let clone: string;
  let canary: string;
  let changes: ChangeSet;

  beforeEach(() => {
    dir = createTempDir();
    clone = join(dir.path, "clone");
    initRepo(clone, { "src/a.ts": "a\n", "src/old.ts": "old\n", "src/crlf.ts": "x\ny\n" });
    const base = git(clone, ["rev-parse", "HEAD"]);
    // What an agent can leave in its clone: fsmonitor, hooks, a filter on every file, a pager.
    canary = join(dir.path, "canary");
    const script = join(dir.path, "canary.sh");
    writeFileSync(script, `#!/bin/sh\necho "ran $*" >> ${canary}\ncat\n`);
    chmodSync(script, 0o755);
    for (const [key, value] of [
      ["core.fsmonitor", script],
      ["core.pager", script],
      ["filter.x=y.clean", script],
      ["filter.x=y.smudge", script],
      ["diff.external", script],
    ])
      git(clone, ["config", key!, value!]);
    mkdirSync(join(clone, ".git", "info"), { recursive: true });
    writeFileSync(join(clone, ".git", "info", "attributes"), "* filter=x=y diff=x\n");
    for (const hook of ["post-index-change", "reference-transaction"]) {
      writeFileSync(join(clone, ".git", "hooks", hook), `#!/bin/sh\n${script} ${hook}\n`);
      chmodSync(join(clone, ".git", "hooks", hook), 0o755);
    }
    writeFileSync(join(clone, "src/a.ts"), "a, changed\n");
    // The change set is what session.changes() hands over: data, read with the container paused.
    changes = {
      sessionId: "s1234567",
      readAt: new Date().toISOString(),
      repos: [
        {
          repo: "backend-api",
          branch: "main",
          baseSha: base,
          headSha: base,
          commits: [],
          paths: [
            fileChange("src/a.ts", "a, changed\n", "modified", "a\n"),
            fileChange("src/crlf.ts", "x\r\ny\r\n", "modified", "x\ny\n"),
            fileChange("src/new.ts", "new\n", "added"),
            { path: "src/old.ts", kind: "deleted", base: { mode: "100644", oid: blobOid(Buffer.from("old\n")) } },
          ],
          skipped: [],
        },
      ],
    };
  });
  afterEach(() => dir.remove());

  it("builds the handover from the change set alone: the canary in the clone never runs", async () => {
    const document = await buildHandover({ spec, changes, commits: { "backend-api": "f".repeat(40) }, summary: ["Added it"] });
    expect(document.filesChanged).toEqual([
      { repo: "backend-api", path: "src/a.ts", change: "modified", state: "committed" },
      { repo: "backend-api", path: "src/crlf.ts", change: "modified", state: "committed" },
      { repo: "backend-api", path: "src/new.ts", change: "added", state: "committed" },
      { repo: "backend-api", path: "src/old.ts", change: "deleted", state: "committed" },
    ]);
    expect(document.crossRepoImpact.reposTouched).toEqual(["backend-api"]);
    expect(renderHandover(document)).toContain("src/new.ts");
    const uncommitted = await buildHandover({ spec, changes: changes.repos[0]!, summary: [] });
    expect(uncommitted.filesChanged.every((file) => file.state === "uncommitted")).toBe(true);
    await expect(buildHandover({ spec, summary: [] })).rejects.toThrow("pass the session's changes");
    expect(existsSync(canary)).toBe(false);
  });

  it("assesses completion from the change set alone: by kind and content, line endings aside", async () => {
    const assessment = await assessCompletion({
      expected: [
        { repo: "backend-api", path: "src/a.ts", change: "modify" },
        { repo: "backend-api", path: "src/crlf.ts", change: "modify" },
        { repo: "backend-api", path: "src/old.ts", change: "delete" },
        { repo: "backend-api", path: "src/todo.ts", change: "create" },
      ],
      changes,
    });
    expect(assessment.done.map((item) => item.path)).toEqual(["src/a.ts", "src/old.ts"]);
    expect(assessment.missing).toEqual([
      expect.objectContaining({ path: "src/crlf.ts", reason: "is unchanged (line endings aside)" }),
      expect.objectContaining({ path: "src/todo.ts", reason: expect.stringContaining("does not exist yet") }),
    ]);
    expect(assessment.unexpected).toEqual([{ repo: "backend-api", path: "src/new.ts", change: "added" }]);
    expect(existsSync(canary)).toBe(false);
  });
});

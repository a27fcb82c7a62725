import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createMemoryProposalStore, createMultiRepoGuard, emptyUsage, parseTaskSpec } from "@bulkhead/core";
import { createTempDir, git, initRepo, type TempDir } from "@bulkhead/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { assessCompletion } from "./assess-completion.js";
import { buildHandover } from "./build-handover.js";
import { consumeHandover, handoverFromJson, handoverToJson, loadHandover } from "./consume-handover.js";
import { HandoverConsumedError, HandoverTooLargeError } from "./handover-errors.js";
import { parseHandover } from "./parse-handover.js";
import { renderContinuationPrompt } from "./render-continuation-prompt.js";
import { renderHandover } from "./render-handover.js";

const spec = parseTaskSpec(`
task: "Add rate limiting to user API"
id: rate-limit
context_scope:
  repos:
    - name: backend-api
      paths: ["src/"]
  max_files: 15
  max_tokens: 50000
ownership:
  primary_repo: backend-api
  allowed_cross_repo_reads: [shared-types]
`);

describe("handover from real repositories", () => {
  let dir: TempDir;
  let backend: string;
  let base: string;

  beforeEach(() => {
    dir = createTempDir();
    backend = join(dir.path, "backend-api");
    initRepo(backend, {
      "src/routes/index.ts": "export const routes = [];\r\nexport default routes;\r\n",
      "src/routes/user.ts": "export const user = 1;\n",
      "src/legacy.ts": "old\n",
      "README.md": "# api\n",
    });
    base = git(backend, ["rev-parse", "HEAD"]);
    dir.write({
      "backend-api/src/middleware/rateLimit.ts": "export const rateLimit = () => true;\n",
      "backend-api/src/routes/index.ts": "export const routes = [rateLimit];\nexport default routes;\n",
    });
    git(backend, ["add", "--all"]);
    git(backend, ["commit", "--quiet", "-m", "rate limit"]);
    rmSync(join(backend, "src/legacy.ts"));
    dir.write({ "backend-api/src/routes/user.ts": "export const user = 2;\n", "backend-api/src/scratch.ts": "// not committed\n" });
  });
  afterEach(() => dir.remove());

  it("builds from git: commits, uncommitted files and deletions, tokens, held proposals", async () => {
    const guard = createMultiRepoGuard({ primaryRepo: "backend-api", store: createMemoryProposalStore() });
    await guard.propose({ repo: "frontend", file: "src/api.ts", diff: "+429" });
    const report = {
      contextReadTokens: 100,
      generationTokens: 20,
      toolCallTokens: 0,
      totalTokens: 120,
      usage: { ...emptyUsage(), inputTokens: 100, uncachedInputTokens: 100, outputTokens: 20 },
      byRepo: {},
      byOperation: {},
    };
    const document = await buildHandover({
      spec,
      repos: { "backend-api": backend },
      base: { "backend-api": base },
      report,
      guard,
      summary: ["Added the middleware"],
      nextTaskDependencies: ["Frontend handles 429"],
      gates: [{ name: "typecheck", result: "passed", evidence: "ok" }],
    });
    expect(document.filesChanged).toEqual([
      { repo: "backend-api", path: "src/legacy.ts", change: "deleted", state: "uncommitted" },
      { repo: "backend-api", path: "src/middleware/rateLimit.ts", change: "added", state: "committed" },
      { repo: "backend-api", path: "src/routes/index.ts", change: "modified", state: "committed" },
      { repo: "backend-api", path: "src/routes/user.ts", change: "modified", state: "uncommitted" },
      { repo: "backend-api", path: "src/scratch.ts", change: "added", state: "uncommitted" },
    ]);
    expect(document.crossRepoImpact).toEqual({
      reposTouched: ["backend-api"],
      held: [expect.objectContaining({ repo: "frontend", file: "src/api.ts", status: "pending" })],
    });
    expect(document.task).toEqual({ id: "rate-limit", title: "Add rate limiting to user API" });
    expect(document.tokens).toEqual(report);
    expect(parseHandover(renderHandover(document))).toEqual(document);
    expect(handoverFromJson(handoverToJson(document))).toEqual(document);
  });

  it("compares each file at base with the file on disk: committed deletions, files written again, files gone again", async () => {
    dir.write({ "backend-api/src/temp.ts": "temporary\n" });
    git(backend, ["add", "--all"]);
    git(backend, ["commit", "--quiet", "-m", "wip"]);
    git(backend, ["rm", "--quiet", "src/routes/user.ts", "src/temp.ts"]);
    git(backend, ["commit", "--quiet", "-m", "remove"]);
    // Deleted in a commit, then written again in the working tree: changed, not deleted.
    dir.write({ "backend-api/src/routes/user.ts": "export const user = 3;\n" });
    const document = await buildHandover({ spec, repos: { "backend-api": backend }, base: { "backend-api": base }, summary: ["wip"] });
    expect(document.filesChanged).toEqual([
      { repo: "backend-api", path: "src/legacy.ts", change: "deleted", state: "committed" },
      { repo: "backend-api", path: "src/middleware/rateLimit.ts", change: "added", state: "committed" },
      { repo: "backend-api", path: "src/routes/index.ts", change: "modified", state: "committed" },
      { repo: "backend-api", path: "src/routes/user.ts", change: "modified", state: "uncommitted" },
      { repo: "backend-api", path: "src/scratch.ts", change: "added", state: "committed" },
    ]);
  });

  it("trims lists to fit maxTokens with a recorded (+N more), or throws when asked", async () => {
    const summary = Array.from({ length: 60 }, (_, index) => `Step ${index}: changed something worth a sentence or two of explanation`);
    const options = { spec, repos: { "backend-api": backend }, base: { "backend-api": base }, summary };
    const full = await buildHandover(options);
    const bounded = await buildHandover({ ...options, maxTokens: 400 });
    expect(bounded.trimmed.length).toBeGreaterThan(0);
    expect(bounded.done.length + (bounded.trimmed.find((entry) => entry.section === "done")?.omitted ?? 0)).toBe(full.done.length);
    expect(Math.ceil(Buffer.byteLength(renderHandover(bounded)) / 4)).toBeLessThanOrEqual(400);
    expect(renderHandover(bounded)).toMatch(/- _\(\+\d+ more\)_/);
    expect(parseHandover(renderHandover(bounded))).toEqual(bounded);
    await expect(buildHandover({ ...options, maxTokens: 400, onOverflow: "throw" })).rejects.toBeInstanceOf(HandoverTooLargeError);
  });

  it("assesses completion by content, with line endings normalized", async () => {
    writeFileSync(join(backend, "src/routes/index.ts"), "export const routes = [];\nexport default routes;\n");
    git(backend, ["commit", "--quiet", "-am", "undo, in LF"]);
    const assessment = await assessCompletion({
      expected: [
        { repo: "backend-api", path: "src/middleware/rateLimit.ts", change: "create" },
        { repo: "backend-api", path: "src/routes/index.ts", change: "modify" },
        { repo: "backend-api", path: "src/legacy.ts", change: "delete" },
        { repo: "backend-api", path: "./src/routes/user.ts", change: "modify" },
        { repo: "backend-api", path: "src/middleware/config.ts", change: "create" },
      ],
      repos: { "backend-api": backend },
      base: { "backend-api": base },
    });
    expect(assessment.done.map((item) => item.path)).toEqual(["src/middleware/rateLimit.ts", "src/legacy.ts", "src/routes/user.ts"]);
    expect(assessment.missing).toEqual([
      { repo: "backend-api", path: "src/routes/index.ts", change: "modify", reason: "is unchanged (line endings aside)" },
      { repo: "backend-api", path: "src/middleware/config.ts", change: "create", reason: "does not exist yet" },
    ]);
    expect(assessment.unexpected).toEqual([{ repo: "backend-api", path: "src/scratch.ts", change: "added" }]);

    const prompt = renderContinuationPrompt({
      assessment,
      task: spec,
      references: [{ file: "src/routes/user.ts", line: 1, what: "route module pattern" }],
    });
    expect(prompt).toContain("1. ✅ create `backend-api/src/middleware/rateLimit.ts`");
    expect(prompt).toContain("### 2. create `backend-api/src/middleware/config.ts`\nCurrently: does not exist yet.");
    expect(prompt).toContain("- route module pattern: `src/routes/user.ts:1`");
    expect(prompt).toContain("### IMPORTANT: DO NOT modify files already completed above.\n- `backend-api/src/middleware/rateLimit.ts`");
    expect(prompt).toContain("- Read across repos: `shared-types`.");
    expect(prompt).not.toContain("Write across repos: `");
  });

  it("consumes a handover once, atomically, even with two consumers at once", async () => {
    const document = await buildHandover({ spec, repos: { "backend-api": backend }, base: { "backend-api": base }, summary: ["done"] });
    for (const name of ["handover.md", "handover.json"]) {
      const path = join(dir.path, name);
      writeFileSync(path, name.endsWith(".md") ? renderHandover(document) : handoverToJson(document));
      const outcomes = await Promise.allSettled([consumeHandover(path, { by: "agent-a" }), consumeHandover(path, { by: "agent-b" })]);
      expect(outcomes.filter((outcome) => outcome.status === "fulfilled")).toHaveLength(1);
      const refused = outcomes.find((outcome) => outcome.status === "rejected") as PromiseRejectedResult;
      expect(refused.reason).toBeInstanceOf(HandoverConsumedError);
      expect((await loadHandover(path)).consumed?.by).toMatch(/^agent-[ab]$/);
    }
  });
});

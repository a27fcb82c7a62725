import { join } from "node:path";
import { createByteEstimateCounter, parseTaskSpec, resolveScope } from "@bulkhead/core";
import { createTempDir, initRepo } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { MAX_TASK_PROMPT_BYTES, renderTaskPrompt } from "./render-task-prompt.js";

const spec = parseTaskSpec(`
task: "Add rate limiting to user API"
id: rate-limit
context_scope:
  repos:
    - name: backend-api
      paths: ["src/"]
    - name: shared-types
      paths: ["index.d.ts"]
  max_files: 15
  max_tokens: 50000
ownership:
  primary_repo: backend-api
  allowed_cross_repo_reads: [shared-types]
budgets:
  context_read: 40000
  generation: 8000
  tool_calls: 12000
  session_total: 80000
`);

describe("renderTaskPrompt", () => {
  it("states the task, the scoped files with their tokens, the ownership rules, the budgets and who commits", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "backend-api"), { "src/routes/user.ts": "export const user = 1;\n", "README.md": "# api\n" });
    initRepo(join(dir.path, "shared-types"), { "index.d.ts": "export type Id = string;\n" });
    const scope = await resolveScope(spec, {
      repos: { "backend-api": join(dir.path, "backend-api"), "shared-types": join(dir.path, "shared-types") },
      counter: createByteEstimateCounter(),
      cache: false,
    });
    const prompt = renderTaskPrompt({ spec, scope });
    expect(prompt).toMatch(/^# Task rate-limit: Add rate limiting to user API\n/);
    const user = scope.files.find((file) => file.path === "src/routes/user.ts")!;
    expect(prompt).toContain(`- \`backend-api/src/routes/user.ts\`: ${user.tokens} tokens`);
    expect(prompt).toContain("- `shared-types/index.d.ts`");
    expect(prompt).not.toContain("README.md");
    expect(prompt).toContain(`(${scope.totals.files} files, ${scope.totals.tokens} tokens`);
    expect(prompt).toContain("Your primary repo is `backend-api` (`/workspace/backend-api`)");
    expect(prompt).toContain("You may read across repos in: `shared-types`.");
    expect(prompt).toContain("You may write across repos in: none.");
    expect(prompt).toContain("held for a person's approval");
    expect(prompt).toContain("Do not commit, push, or create branches: the lead commits");
    expect(prompt).toContain("context read 40000 tokens; generation 8000 tokens; tool calls 12000 tokens; session total 80000 tokens.");
    expect(prompt).not.toContain("Continuing earlier work");
    // Deterministic: the same inputs give the same prompt.
    expect(renderTaskPrompt({ spec, scope })).toBe(prompt);

    const continued = renderTaskPrompt({ spec, scope, continuation: "The previous agent completed:\n1. ✅ create `backend-api/src/a.ts`" });
    expect(continued).toContain("## Continuing earlier work\n\nThe previous agent completed:\n1. ✅ create `backend-api/src/a.ts`\n");
  });

  it("lists at most maxListedFiles files, counts the rest, and refuses a prompt no command line can carry", () => {
    const files = Array.from({ length: 5 }, (_, index) => ({ repo: "backend-api", path: `src/f${index}.ts`, bytes: 4, tokens: 10 }));
    const scope = { files, totals: { files: 5, bytes: 20, tokens: 50 }, counter: "bytes/4", estimated: true };
    const prompt = renderTaskPrompt({ spec, scope, maxListedFiles: 2 });
    expect(prompt).toContain("- and 3 more files (30 tokens)");
    expect(prompt).toContain("50 tokens (estimated), counted with bytes/4");
    const huge = Array.from({ length: 5000 }, (_, index) => ({
      repo: "backend-api",
      path: `src/${"d".repeat(30)}/f${index}.ts`,
      bytes: 4,
      tokens: 1,
    }));
    expect(() => renderTaskPrompt({ spec, scope: { ...scope, files: huge }, maxListedFiles: 5000 })).toThrow(
      new RegExp(`over ${MAX_TASK_PROMPT_BYTES}`),
    );
    expect(() => renderTaskPrompt({ spec: { ...spec, task: " " }, scope })).toThrow(/spec's task/);
  });

  it("places the memory section after the rules as given, and leaves it out when empty", () => {
    const scope = { files: [], totals: { files: 0, bytes: 0, tokens: 0 }, counter: "bytes/4", estimated: true };
    const section =
      "## Project memory\n\nReviewed decisions.\n\n- [decision] Limits live in Redis (backend-api: src; m-abc)\n  Shared by every instance.\n";
    const prompt = renderTaskPrompt({ spec, scope, memory: section });
    expect(prompt).toContain(`the lead commits your changes once they pass its checks.\n\n${section}\n## Budgets`);
    expect(prompt.indexOf("## Project memory")).toBeGreaterThan(prompt.indexOf("## Rules"));
    expect(renderTaskPrompt({ spec, scope, memory: "" })).toBe(renderTaskPrompt({ spec, scope }));
    expect(renderTaskPrompt({ spec, scope })).not.toContain("Project memory");
    expect(() => renderTaskPrompt({ spec, scope, memory: 42 as unknown as string })).toThrow(/rendered memory section/);
    expect(() => renderTaskPrompt({ spec, scope, memory: "x".repeat(MAX_TASK_PROMPT_BYTES) })).toThrow(/give less memory/);
  });
});

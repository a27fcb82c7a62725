import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createFileProposalStore } from "@bulkhead/core";
import { parseHandover } from "@bulkhead/handover";
import { createTempDir } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { runRateLimitDemo } from "./run-demo.js";

describe("the rate-limit example (npm run demo)", () => {
  it("runs seed 000's task end to end: one commit, the frontend edit held, the handover written", async () => {
    await using dir = createTempDir();
    const lines: string[] = [];
    const result = await runRateLimitDemo({ root: dir.path, log: (line) => lines.push(line) });
    const source = join(dir.path, "backend-api");
    const git = (args: string[]) => execFileSync("git", args, { cwd: source, encoding: "utf8" }).trim();

    expect(result.committedFiles.sort()).toEqual(["src/middleware/rateLimit.ts", "src/routes/index.ts"]);
    expect(git(["rev-parse", result.ref])).toBe(result.sha);
    expect(
      git(["show", "--name-only", "--format=%(trailers:key=Bulkhead-Issue,valueonly)", result.sha]).split("\n").filter(Boolean),
    ).toEqual(["rate-limit", "src/middleware/rateLimit.ts", "src/routes/index.ts"]);
    expect(git(["show", `${result.sha}:src/routes/index.ts`])).toContain("export const routes = [rateLimit, user];");
    expect(git(["rev-parse", "--abbrev-ref", "HEAD"])).toBe("main");
    expect(git(["status", "--porcelain"])).toBe("");
    expect(git(["fsck", "--no-progress"])).toBe("");

    const pending = await createFileProposalStore(join(dir.path, ".bulkhead", "proposals")).list({ status: "pending" });
    expect(pending.map((proposal) => `${proposal.repo}/${proposal.file}`)).toEqual(["frontend/src/api.ts"]);
    expect(result.held).toEqual([{ repo: "frontend", file: "src/api.ts", id: pending[0]!.id }]);

    const handover = parseHandover(readFileSync(result.handoverPath, "utf8"));
    expect(handover).toMatchObject({ status: "partial", task: { id: "rate-limit", title: "Add rate limiting to user API" } });
    // From the change set: the committed backend files, and the held frontend edit (not committed).
    expect(handover.filesChanged.map((file) => `${file.repo} ${file.change} ${file.path} ${file.state}`)).toEqual([
      "backend-api added src/middleware/rateLimit.ts committed",
      "backend-api modified src/routes/index.ts committed",
      "frontend modified src/api.ts uncommitted",
    ]);
    expect(handover.tokens?.totalTokens).toBe(34_676);
    expect(handover.crossRepoImpact.held).toEqual([expect.objectContaining({ repo: "frontend", file: "src/api.ts", status: "pending" })]);
    expect(handover.nextTaskDependencies).toContain("Frontend needs to handle 429 responses");
    expect(lines.some((line) => line.startsWith("guard: held frontend/src/api.ts"))).toBe(true);
  });
});

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { normalizeUsage, usageOnly } from "@bulkhead/budget";
import { addUsage, createFileProposalStore, emptyUsage } from "@bulkhead/core";
import { parseHandover } from "@bulkhead/handover";
import { createTempDir } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { runRateLimitDemo } from "./run-demo.js";

describe("the rate-limit example (npm run demo)", () => {
  it("runs seed 000's task with the real Claude Code through the gateway: one commit, the frontend edit held, a call refused on the wire", async () => {
    await using dir = createTempDir();
    const lines: string[] = [];
    const previous = process.env.BULKHEAD_UPSTREAM_ANTHROPIC;
    delete process.env.BULKHEAD_UPSTREAM_ANTHROPIC;
    const result = await runRateLimitDemo({ root: dir.path, log: (line) => lines.push(line) }).finally(() => {
      if (previous !== undefined) process.env.BULKHEAD_UPSTREAM_ANTHROPIC = previous;
    });
    const source = join(dir.path, "backend-api");
    const git = (args: string[]) => execFileSync("git", args, { cwd: source, encoding: "utf8" }).trim();

    // The agent's own tools (Write, Edit) made the change; the lead committed it.
    expect(result.committedFiles.sort()).toEqual(["src/middleware/rateLimit.ts", "src/routes/index.ts"]);
    expect(git(["rev-parse", result.ref])).toBe(result.sha);
    expect(
      git(["show", "--name-only", "--format=%(trailers:key=Bulkhead-Issue,valueonly)", result.sha]).split("\n").filter(Boolean),
    ).toEqual(["rate-limit", "src/middleware/rateLimit.ts", "src/routes/index.ts"]);
    expect(git(["show", `${result.sha}:src/routes/index.ts`])).toContain("export const routes = [rateLimit, user];");
    expect(git(["show", `${result.sha}:src/middleware/rateLimit.ts`])).toContain("export function rateLimit(");
    expect(git(["rev-parse", "--abbrev-ref", "HEAD"])).toBe("main");
    expect(git(["status", "--porcelain"])).toBe("");
    expect(git(["fsck", "--no-progress"])).toBe("");

    const pending = await createFileProposalStore(join(dir.path, ".bulkhead", "proposals")).list({ status: "pending" });
    expect(pending.map((proposal) => `${proposal.repo}/${proposal.file}`)).toEqual(["frontend/src/api.ts"]);
    expect(result.held).toEqual([{ repo: "frontend", file: "src/api.ts", id: pending[0]!.id }]);

    // The model was the scripted upstream, and said so; it got the host's key, never the session token.
    expect(result.scripted).toBe(true);
    expect(lines.find((line) => line.startsWith("model: "))).toContain("SCRIPTED");
    const upstream = result.upstream!;
    const messages = upstream.requestsFor("anthropic-messages");
    expect(new Set(messages.map((received) => String(received.headers["x-api-key"])).map((key) => key.startsWith("sk-ant-demo-")))).toEqual(
      new Set([true]),
    );

    // On the wire: four calls forwarded, each with max_tokens clamped to the generation budget
    // left; the fifth refused before forwarding (its prompt did not fit in the session total), as
    // a 402 billing_error, which Claude Code does not send again. The model never saw it.
    expect(messages).toHaveLength(4);
    const forwarded = result.audit.filter((record) => record.outcome === "ok");
    expect(forwarded).toHaveLength(4);
    expect(forwarded.map((record) => record.maxTokens?.forwarded)).toEqual([10_000, 9_690, 6_790, 6_150]);
    expect(forwarded.every((record) => record.budget.some((act) => act.kind === "generation" && act.action === "clamped"))).toBe(true);
    expect(messages.map((received) => received.body?.max_tokens)).toEqual([10_000, 9_690, 6_790, 6_150]);
    const refused = result.audit.slice(4);
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ outcome: "refused", status: 402, budget: [{ kind: "sessionTotal", action: "refused" }] });
    expect(result.refusedBy).toBe("sessionTotal");
    expect(
      lines.some((line) =>
        line.startsWith("gateway: REFUSED call-5 before forwarding it: bulkhead gateway: this call does not fit the session-total budget"),
      ),
    ).toBe(true);
    expect(
      lines.some((line) => line.startsWith("claude: ✗ API Error: 402 bulkhead gateway: this call does not fit the session-total budget")),
    ).toBe(true);

    // The handover's token numbers are the gateway's, and equal, exactly, what the upstream sent.
    const sent = messages.map((received) => usageOnly(normalizeUsage("anthropic", received.sentUsage))).reduce(addUsage, emptyUsage());
    expect(result.report.usage).toEqual(sent);
    expect(result.stats.usage).toEqual(sent);
    expect(sent).toMatchObject({ uncachedInputTokens: 31, cacheReadTokens: 76_500, cacheWrite5mTokens: 26_600, outputTokens: 4_270 });
    const handover = parseHandover(readFileSync(result.handoverPath, "utf8"));
    expect(handover).toMatchObject({ status: "partial", task: { id: "rate-limit", title: "Add rate limiting to user API" } });
    expect(handover.tokens?.totalTokens).toBe(107_401);
    expect(handover.tokens?.totalTokens).toBe(sent.inputTokens + sent.outputTokens);
    expect(handover.tokens?.usage).toEqual(sent);
    // From the change set: the committed backend files, and the held frontend edit (not committed).
    expect(handover.filesChanged.map((file) => `${file.repo} ${file.change} ${file.path} ${file.state}`)).toEqual([
      "backend-api added src/middleware/rateLimit.ts committed",
      "backend-api modified src/routes/index.ts committed",
      "frontend modified src/api.ts uncommitted",
    ]);
    expect(handover.crossRepoImpact.held).toEqual([expect.objectContaining({ repo: "frontend", file: "src/api.ts", status: "pending" })]);
    expect(handover.nextTaskDependencies).toContain("Frontend needs to handle 429 responses");
    expect(handover.notes.join("\n")).toContain("sessionTotal budget");
    expect(handover.notes.join("\n")).toContain("scripted");
    expect(lines.some((line) => line.startsWith("guard: held frontend/src/api.ts"))).toBe(true);
  });
});

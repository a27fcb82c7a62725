import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTokenCounter } from "@bulkhead/budget";
import { parseTaskSpec } from "@bulkhead/core";
import { buildHandover, parseHandover, renderHandover } from "@bulkhead/handover";
import { GENERATED_MEMORY_MARKER } from "@bulkhead/memory";
import { createTempDir, git, initRepo } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { main } from "./main.js";

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, { stdout: (text) => void (out += text), stderr: (text) => void (err += text), progress: () => undefined });
  return { code, out, err };
}
const json = async (args: string[]) => {
  const result = await cli([...args, "--json"]);
  return { code: result.code, data: JSON.parse(result.out) };
};

const specText = (repo: string, paths: string[], maxTokens: number) =>
  `task: "Add rate limiting to user API"\nid: rate-limit-2\ncontext_scope:\n  repos:\n    - name: ${repo}\n      paths: ${JSON.stringify(paths)}\n  max_files: 20\n  max_tokens: ${maxTokens}\nownership:\n  primary_repo: ${repo}\n`;

describe("bulkhead memory, end to end", () => {
  it("a handover with two decisions → proposed → one accepted → the next task's prompt section has exactly that one, counted in the context read, and the next handover lists it", async () => {
    await using dir = createTempDir();
    const api = join(dir.path, "api");
    initRepo(api, { "src/middleware/index.ts": "export {};\n", "src/routes/user.ts": "export const user = 1;\n" });
    const base = git(api, ["rev-parse", "HEAD"]);
    // Task 1 changes the repo for real; its handover carries two decisions and a note.
    writeFileSync(join(api, "src/middleware/rateLimit.ts"), "export const limit = 100;\n");
    git(api, ["add", "--all"]);
    git(api, ["commit", "--quiet", "--message", "rate limit"]);
    const spec1 = parseTaskSpec(specText("api", ["src"], 50_000));
    const first = await buildHandover({
      spec: spec1,
      repos: { api },
      base: { api: base },
      summary: ["Added the rate-limit middleware"],
      decisions: [
        "Rate limits live in Redis — every instance must share the same counters",
        "Limit by user id because offices share an IP",
      ],
      notes: ["Failure: the in-process limiter reset on every deploy"],
    });
    const handoverPath = join(dir.path, "handover-1.md");
    writeFileSync(handoverPath, renderHandover(first));
    const memory = join(dir.path, "memory");

    const proposed = await json(["memory", "propose", handoverPath, "--dir", memory, "--by", "agent@s1"]);
    expect(proposed.code).toBe(0);
    expect(proposed.data.proposed.map((entry: { kind: string; result: string }) => [entry.kind, entry.result])).toEqual([
      ["decision", "created"],
      ["decision", "created"],
      ["learning", "created"],
    ]);
    const [redis, byUser] = proposed.data.proposed as { id: string; title: string }[];
    expect(redis!.title).toBe("Rate limits live in Redis");

    // Nothing is selected before a person accepts.
    writeFileSync(join(dir.path, "spec2.yaml"), specText("api", ["src/middleware"], 50_000));
    const repoFlag = `api=${api}`;
    const before = await json(["memory", "select", join(dir.path, "spec2.yaml"), "--repo", repoFlag, "--dir", memory]);
    expect(before.data.selected).toEqual([]);
    expect(before.data.section).toBe("");

    // The agent cannot accept its own proposal (exit 2, refused); a person can.
    const self = await json(["memory", "accept", redis!.id, "--dir", memory, "--by", "agent@s1"]);
    expect(self).toMatchObject({ code: 2, data: { error: { code: "MEMORY_REFUSED" } } });
    expect((await cli(["memory", "accept", redis!.id, "--dir", memory])).code).toBe(1); // --by is required: a usage error
    const accepted = await json(["memory", "accept", redis!.id, "--dir", memory, "--by", "alice"]);
    expect(accepted).toMatchObject({ code: 0, data: { status: "accepted", acceptedBy: "alice" } });
    expect((await json(["memory", "accept", redis!.id, "--dir", memory, "--by", "bob"])).code).toBe(2);
    expect((await json(["memory", "drop", byUser!.id, "--dir", memory, "--by", "alice", "--reason", "not a rule"])).code).toBe(0);
    // Proposing the same handover again adds nothing, and the dropped entry stays dropped.
    const again = await json(["memory", "propose", handoverPath, "--dir", memory, "--by", "agent@s1"]);
    expect(again.data.proposed.map((entry: { result: string }) => entry.result)).toEqual(["exists", "exists", "exists"]);
    const listed = await json(["memory", "list", "--dir", memory, "--status", "all"]);
    expect(listed.data.entries.map((entry: { id: string; status: string }) => [entry.id, entry.status]).sort()).toEqual(
      [
        [redis!.id, "accepted"],
        [byUser!.id, "dropped"],
        [proposed.data.proposed[2].id, "proposed"],
      ].sort(),
    );

    // The next task: exactly the accepted decision, its tokens counted with the scope's.
    const workspace = join(dir.path, "workspace");
    initRepo(workspace, { "CLAUDE.md": "# The user's own instructions\n" });
    const selected = await json([
      "memory",
      "select",
      join(dir.path, "spec2.yaml"),
      "--repo",
      repoFlag,
      "--dir",
      memory,
      "--out",
      join(dir.path, "section.md"),
      "--instructions",
      workspace,
      "--record",
    ]);
    expect(selected.code).toBe(0);
    expect(selected.data.selected).toEqual([{ id: redis!.id, tokens: expect.any(Number), specificity: "repo" }]);
    const section = readFileSync(join(dir.path, "section.md"), "utf8");
    expect(section).toBe(selected.data.section);
    expect(section).toContain("[decision] Rate limits live in Redis Why: every instance must share the same counters");
    expect(section).not.toContain("offices share an IP");
    expect(section).not.toContain("in-process limiter");
    using counter = createTokenCounter({ encoding: "o200k_base" });
    expect(selected.data.memoryTokens).toBe(counter.count(section));
    const scope = await json(["scope", "resolve", join(dir.path, "spec2.yaml"), "--repo", repoFlag]);
    expect(selected.data.context).toEqual({
      scopeTokens: scope.data.totals.tokens,
      memoryTokens: counter.count(section),
      total: scope.data.totals.tokens + counter.count(section),
      limit: 50_000,
      allowed: true,
    });
    // Files for agents that read them: the user's CLAUDE.md is left alone, AGENTS.md is generated read-only.
    expect(readFileSync(join(workspace, "CLAUDE.md"), "utf8")).toBe("# The user's own instructions\n");
    expect(selected.data.instructions.skipped).toEqual([
      { path: join(workspace, "CLAUDE.md"), reason: expect.stringContaining("never edited") },
    ]);
    const agents = readFileSync(join(workspace, "AGENTS.md"), "utf8");
    expect(agents).toBe(`${GENERATED_MEMORY_MARKER}\n\n${section}`);
    expect(statSync(join(workspace, "AGENTS.md")).mode & 0o777).toBe(0o444);
    expect(JSON.parse(readFileSync(join(memory, ".usage.json"), "utf8"))[redis!.id].uses).toBe(1);

    // The handover of the next task lists the entries the agent was given, and reads back.
    const next = await buildHandover({
      spec: parseTaskSpec(readFileSync(join(dir.path, "spec2.yaml"), "utf8")),
      repos: { api },
      base: { api: git(api, ["rev-parse", "HEAD"]) },
      summary: ["Wired the limiter"],
      memoryGiven: selected.data.selected.map((item: { id: string }) => item.id),
    });
    writeFileSync(join(dir.path, "handover-2.md"), renderHandover(next));
    expect(readFileSync(join(dir.path, "handover-2.md"), "utf8")).toContain(`## Memory given\n- ${redis!.id}\n`);
    expect(parseHandover(readFileSync(join(dir.path, "handover-2.md"), "utf8")).memoryGiven).toEqual([redis!.id]);
    expect((await json(["handover", "parse", join(dir.path, "handover-2.md")])).data.memoryGiven).toEqual([redis!.id]);

    // A context budget the scope nearly fills leaves no room, whatever share is asked for: the
    // entry is listed as not fitted, and scope plus memory still fit the context read.
    const limit = scope.data.totals.tokens + 5;
    writeFileSync(join(dir.path, "tight.yaml"), specText("api", ["src/middleware"], limit));
    const tight = await json([
      "memory",
      "select",
      join(dir.path, "tight.yaml"),
      "--repo",
      repoFlag,
      "--dir",
      memory,
      "--memory-tokens",
      "1000",
    ]);
    expect(tight).toMatchObject({ code: 0, data: { selected: [], notFitted: [redis!.id], memoryBudget: 5, section: "" } });
    expect(tight.data.context).toMatchObject({ total: scope.data.totals.tokens, limit, allowed: true });
  });

  it("carries a learning from repo A, marked for the workspace, to a task scoped only to repo B", async () => {
    await using dir = createTempDir();
    const repoA = join(dir.path, "repo-a");
    const repoB = join(dir.path, "repo-b");
    initRepo(repoA, { "ci/Dockerfile": "FROM scratch\n" });
    initRepo(repoB, { "src/app.ts": "export {};\n" });
    const memory = join(dir.path, "memory");
    const learned = await json([
      "memory",
      "propose",
      "--dir",
      memory,
      "--by",
      "carol",
      "--kind",
      "learning",
      "--title",
      "Acceptance checks must be token-specific, not category-level",
      "--applies",
      "repo-a",
    ]);
    const id = learned.data.proposed[0].id as string;
    writeFileSync(join(dir.path, "b.yaml"), specText("repo-b", ["src"], 10_000));
    const select = () => json(["memory", "select", join(dir.path, "b.yaml"), "--repo", `repo-b=${repoB}`, "--dir", memory]);
    // Accepted for repo A only, it stays in A.
    await json(["memory", "accept", id, "--dir", memory, "--by", "dave"]);
    expect((await select()).data.selected).toEqual([]);
    // Marked for the workspace (an edit, by hand in the reviewed file), it reaches repo B.
    const file = join(memory, `${id}.md`);
    writeFileSync(file, readFileSync(file, "utf8").replace("applies:\n  - repo: repo-a\n", "applies: workspace\n"));
    const inB = await select();
    expect(inB.data.selected).toEqual([{ id, tokens: expect.any(Number), specificity: "workspace" }]);
    expect(inB.data.section).toContain("Acceptance checks must be token-specific");
  });

  it("reports a malformed entry file by path and line, skips it, and never uses it", async () => {
    await using dir = createTempDir();
    const repo = join(dir.path, "api");
    initRepo(repo, { "src/a.ts": "export {};\n" });
    const memory = join(dir.path, "memory");
    const made = await json([
      "memory",
      "propose",
      "--dir",
      memory,
      "--by",
      "erin",
      "--kind",
      "convention",
      "--title",
      "Good rule",
      "--applies",
      "workspace",
    ]);
    await json(["memory", "accept", made.data.proposed[0].id, "--dir", memory, "--by", "frank"]);
    // Accepted in the file, but the applies target is malformed at line 6.
    writeFileSync(
      join(memory, "m-broken.md"),
      "---\nid: m-broken\nkind: convention\nstatus: accepted\ntitle: Bad rule\napplies: [{ repo: 'no spaces allowed' }]\nsource: { kind: person, ref: erin }\ncreated: 2026-12-01T10:00:00.000Z\nupdated: 2026-12-01T10:00:00.000Z\n---\n",
    );
    const listed = await cli(["memory", "list", "--dir", memory]);
    expect(listed.code).toBe(0);
    expect(listed.out).toContain(`skipped: ${join(memory, "m-broken.md")}:6:`);
    expect(listed.out).toContain("applies");
    writeFileSync(join(dir.path, "spec.yaml"), specText("api", ["src"], 10_000));
    const selected = await json(["memory", "select", join(dir.path, "spec.yaml"), "--repo", `api=${repo}`, "--dir", memory]);
    expect(selected.data.selected.map((item: { id: string }) => item.id)).toEqual([made.data.proposed[0].id]);
    expect(selected.data.section).not.toContain("Bad rule");
    expect(selected.data.problems).toEqual([expect.objectContaining({ source: join(memory, "m-broken.md"), line: 6 })]);
  });

  it("checks its arguments: usage errors exit 1", async () => {
    expect((await cli(["memory", "propose", "--dir", "x"])).code).toBe(1);
    expect((await cli(["memory", "list", "--status", "maybe"])).code).toBe(1);
    expect((await cli(["memory", "accept", "m-none", "--by", "alice", "--dir", "/nonexistent-memory"])).err).toContain(
      'no memory entry "m-none"',
    );
    expect((await cli(["memory", "--help"])).out).toContain("bulkhead memory select <spec>");
  });
});

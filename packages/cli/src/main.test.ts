import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTempDir, git, initRepo } from "@bulkhead/test-utils";
import { describe, expect, inject, it } from "vitest";
import { main } from "./main.js";

async function cli(args: string[]): Promise<{ code: number; out: string; err: string; progress: string[] }> {
  let out = "";
  let err = "";
  const progress: string[] = [];
  const code = await main(args, {
    stdout: (text) => void (out += text),
    stderr: (text) => void (err += text),
    progress: (line) => void progress.push(line),
  });
  return { code, out, err, progress };
}

const spec = (id: string, paths: string[], extra = "") =>
  `task: "${id}"\nid: ${id}\ncontext_scope:\n  repos:\n    - name: api\n      paths: ${JSON.stringify(paths)}\n  max_files: 10\n  max_tokens: 1000\nownership:\n  primary_repo: api\n${extra}`;

describe("bulkhead CLI", () => {
  it("prints the usage with no command, and per-command help with an example", async () => {
    expect(await cli([])).toMatchObject({ out: expect.stringContaining("bulkhead plan waves <spec>...") });
    expect(await cli(["scope", "--help"])).toMatchObject({ code: 0, out: expect.stringContaining("bulkhead scope resolve <spec>") });
    expect((await cli(["lead", "submit", "--help"])).out).toContain("Example:\n  bulkhead lead submit . --issue RATE-1");
  });

  it("prints the package's version, as text and with --json", async () => {
    const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    expect(await cli(["--version"])).toMatchObject({ code: 0, out: `${version}\n` });
    expect(JSON.parse((await cli(["--version", "--json"])).out)).toEqual({ version });
  });

  it("an unknown command exits 1: a message on stderr that names it and points to --help, or one JSON document", async () => {
    expect(await cli(["nope"])).toMatchObject({
      code: 1,
      out: "",
      err: expect.stringMatching(/^unknown command "nope".*See bulkhead --help\n$/),
    });
    expect(JSON.parse((await cli(["nope", "--json"])).out).error.message).toContain('unknown command "nope"');
  });

  it("an unknown option is a usage error, with --json too", async () => {
    expect((await cli(["scope", "resolve", "x.yaml", "--bogus"])).err).toContain("Unknown option '--bogus'");
    expect(JSON.parse((await cli(["scope", "resolve", "x.yaml", "--bogus", "--json"])).out).error).toMatchObject({ code: "USAGE" });
  });

  it("a missing spec file exits 1 with INVALID_ARGUMENT in the JSON error", async () => {
    const missing = await cli(["scope", "resolve", "missing.yaml", "--repo", "api=.", "--json"]);
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.out).error.code).toBe("INVALID_ARGUMENT");
  });

  it("names the missing options and arguments a command requires", async () => {
    const noIssue = await cli(["lead", "submit", ".", "--worker", "w", "src/a.ts"]);
    expect(noIssue).toMatchObject({ code: 1, err: expect.stringContaining("missing --issue, --message. Usage: bulkhead lead submit") });
    expect((await cli(["dispatch", "bulkhead.yaml"])).err).toContain("missing --spec");
    expect((await cli(["session", "status"])).err).toContain("missing <id>. Usage: bulkhead session status <id>");
  });

  it("refuses a session id that is a path", async () => {
    expect((await cli(["session", "status", "../../etc"])).err).toContain('"../../etc" is not a session id');
  });

  it("plan waves never puts two tasks that create the same new file in one wave (one planner behind plan shared)", async () => {
    await using dir = createTempDir();
    dir.write({
      "api/src/routes.ts": "export const routes = [];\n",
      "x.yaml": spec("x", ["src/routes.ts", "src/limits.ts"]),
      "y.yaml": spec("y", ["src/limits.ts"]),
    });
    const repo = `api=${join(dir.path, "api")}`;
    const args = [join(dir.path, "x.yaml"), join(dir.path, "y.yaml"), "--repo", repo, "--json"];
    const waves = JSON.parse((await cli(["plan", "waves", ...args])).out);
    expect(waves.waves).toEqual([["x"], ["y"]]);
    expect(waves.shared).toEqual([expect.objectContaining({ file: "api/src/limits.ts", tasks: ["x", "y"] })]);
    const shared = JSON.parse((await cli(["plan", "shared", ...args])).out);
    expect(shared.shared).toEqual(waves.shared);
    const bad = await cli(["plan", "waves", ...args.slice(0, 4), "--max-per-wave", "0"]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain("--max-per-wave");
  });

  it("resolves scopes, checks budgets and plans waves with --json", async () => {
    await using dir = createTempDir();
    dir.write({
      "api/src/types.ts": "export type Id = string;\n",
      "api/src/routes.ts": "x".repeat(8000),
      "a.yaml": spec("a", ["src/types.ts"]),
      "b.yaml": spec("b", ["src/types.ts", "src/routes.ts"], "depends_on: [a]\n"),
      "c.yaml": spec("c", ["src/types.ts"]),
    });
    const repo = `api=${join(dir.path, "api")}`;
    const resolved = await cli(["scope", "resolve", join(dir.path, "a.yaml"), "--repo", repo, "--json"]);
    expect(resolved.code).toBe(0);
    expect(JSON.parse(resolved.out).files.map((file: { path: string }) => file.path)).toEqual(["src/types.ts"]);
    expect((await cli(["scope", "resolve", join(dir.path, "b.yaml"), "--repo", repo])).code).toBe(2);
    const check = await cli(["budget", "check", join(dir.path, "b.yaml"), "--repo", repo, "--json"]);
    expect(check.code).toBe(2);
    expect(JSON.parse(check.out)).toMatchObject({ allowed: false, contextRead: 1000 });
    // The session total holds the context too, as in dispatch.
    dir.write({ "tight.yaml": spec("tight", ["src/types.ts"], "budgets:\n  context_read: 1000\n  session_total: 2\n") });
    const tight = await cli(["budget", "check", join(dir.path, "tight.yaml"), "--repo", repo, "--json"]);
    expect(tight.code).toBe(2);
    expect(JSON.parse(tight.out)).toMatchObject({ allowed: false, contextRead: 1000, sessionTotal: 2 });
    const waves = await cli([
      "plan",
      "waves",
      join(dir.path, "a.yaml"),
      join(dir.path, "b.yaml"),
      join(dir.path, "c.yaml"),
      "--repo",
      repo,
      "--json",
    ]);
    expect(JSON.parse(waves.out).waves).toEqual([["a"], ["b"], ["c"]]);
    const shared = await cli(["plan", "shared", join(dir.path, "a.yaml"), join(dir.path, "c.yaml"), "--repo", repo, "--json"]);
    expect(JSON.parse(shared.out).shared).toEqual([expect.objectContaining({ file: "api/src/types.ts", strategy: "interface-first" })]);
  });

  it("commits through the lead and round-trips handovers", async () => {
    await using dir = createTempDir();
    const repo = join(dir.path, "api");
    initRepo(repo);
    dir.write({ "api/src/a.ts": "a\n" });
    const submitted = await cli(["lead", "submit", repo, "--issue", "CLI-1", "--worker", "w", "--message", "Add a", "src/a.ts", "--json"]);
    expect(submitted.code).toBe(0);
    expect(JSON.parse(submitted.out).sha).toBe(git(repo, ["rev-parse", "HEAD"]));
    expect((await cli(["lead", "submit", repo, "--issue", "CLI-1", "--worker", "w", "--message", "Again", "src/a.ts"])).code).toBe(2);
    expect(JSON.parse((await cli(["lead", "status", repo, "--json"])).out).recentCommits).toHaveLength(1);

    // Gates run before the commit and report as they finish; a failing gate refuses the commit (exit 2).
    dir.write({ "api/src/b.ts": "b\n" });
    const gated = await cli([
      "lead",
      "submit",
      repo,
      "--issue",
      "CLI-2",
      "--worker",
      "w",
      "--message",
      "Add b",
      "--gate",
      "test -f src/b.ts",
      "src/b.ts",
    ]);
    expect(gated.code).toBe(0);
    expect(gated.progress).toEqual(["running 1 gate(s)", expect.stringMatching(/^gate test -f src\/b.ts: passed in \d+ ms$/)]);
    dir.write({ "api/src/c.ts": "c\n" });
    const refused = await cli([
      "lead",
      "submit",
      repo,
      "--issue",
      "CLI-3",
      "--worker",
      "w",
      "--message",
      "Add c",
      "--gate",
      "exit 3",
      "src/c.ts",
      "--json",
    ]);
    expect(refused.code).toBe(2);
    expect(JSON.parse(refused.out)).toMatchObject({ status: "rejected", gates: [{ name: "exit 3", ok: false }] });
    expect(refused.progress).toEqual([]);
    expect(git(repo, ["log", "--format=%s"]).split("\n")).toEqual(["Add b", "Add a", expect.any(String)]);
    const markdown = `# Handover: t\n\n- Handover: h-1\n- Status: partial\n- Created: 2026-11-24T10:00:00.000Z\n\n## What was done\n- x\n\n## Files changed\n_None._\n\n## Token consumption\n_None._\n\n## Cross-repo impact\n_None._\n\n## Next task dependencies\n_None._\n\n## Gates\n_None._\n\n## Notes\n_None._\n`;
    writeFileSync(join(dir.path, "handover.md"), markdown);
    expect((await cli(["handover", "check", join(dir.path, "handover.md")])).code).toBe(0);
    writeFileSync(join(dir.path, "handover.json"), (await cli(["handover", "parse", join(dir.path, "handover.md")])).out);
    expect((await cli(["handover", "render", join(dir.path, "handover.json")])).out).toBe(`${markdown}\n`);
    writeFileSync(join(dir.path, "broken.md"), "# nope");
    expect((await cli(["handover", "check", join(dir.path, "broken.md")])).code).toBe(1);
  });

  it("starts, uses and removes a session on the real engine", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "app"));
    writeFileSync(
      join(dir.path, "bulkhead.yaml"),
      `name: cli\nrepos:\n  - name: app\n    path: app\nimage:\n  existing: ${inject("testImage")}\n`,
    );
    process.env.BULKHEAD_HOME = join(dir.path, "home");
    try {
      const started = await cli(["session", "start", join(dir.path, "bulkhead.yaml"), "--json"]);
      expect(started.code).toBe(0);
      const { id } = JSON.parse(started.out) as { id: string };
      expect(JSON.parse((await cli(["session", "list", "--json"])).out)).toEqual([expect.objectContaining({ id, container: "running" })]);
      const run = await cli(["inject", id, "--follow", "--", "/bin/sh", "-c", "echo hello from the job"]);
      expect(run).toMatchObject({ code: 0, out: "hello from the job\n" });
      expect(run.progress).toEqual([expect.stringMatching(/^job \S+ started$/), expect.stringMatching(/^job \S+ exited with 0$/)]);
      expect(JSON.parse((await cli(["code", "fetch", id, "--json"])).out)).toEqual([
        expect.objectContaining({ repo: "app", status: "unchanged" }),
      ]);
      const stopped = await cli(["session", "stop", id, "--json"]);
      expect(stopped.code).toBe(0);
      expect(JSON.parse(stopped.out)).toMatchObject({
        stopped: id,
        container: "stopped",
        kept: { workspace: expect.stringContaining(id) },
      });
      expect(JSON.parse((await cli(["session", "reconcile", "--json"])).out)).toMatchObject({ stopped: [id], started: [] });
      expect(JSON.parse((await cli(["session", "reconcile", "--start", "--json"])).out)).toMatchObject({ started: [id] });
      expect(JSON.parse((await cli(["session", "reconcile", "--json"])).out)).toMatchObject({ stopped: [], missingContainers: [] });
      const removed = await cli(["session", "rm", id]);
      expect(removed.code).toBe(0);
      expect(removed.out).toContain(`removed ${id} (container removed, `);
      expect(JSON.parse((await cli(["session", "list", "--json"])).out)).toEqual([]);
    } finally {
      delete process.env.BULKHEAD_HOME;
    }
  });
});

describe("bulkhead dispatch → harvest → finish", () => {
  it("runs the agent, commits the primary repo, holds the cross-repo edit, writes the handover", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "backend-api"), { "src/index.ts": "export {};\n" });
    initRepo(join(dir.path, "frontend"), { "src/api.ts": "export {};\n" });
    const agent = new URL("../test/agent.sh", import.meta.url).pathname;
    writeFileSync(
      join(dir.path, "bulkhead.yaml"),
      `name: e2e\nrepos:\n  - name: backend-api\n    path: backend-api\n  - name: frontend\n    path: frontend\nimage:\n  files:\n    rootfs/bin/busybox: /bin/busybox\n    rootfs/agent.sh: ${agent}\n  dockerfile: |\n    FROM scratch\n    COPY rootfs/ /\n    RUN ["/bin/busybox", "--install", "-s", "/bin"]\n    RUN ["/bin/busybox", "mkdir", "-p", "-m", "1777", "/tmp"]\nagent:\n  command: ["/bin/sh", "/agent.sh"]\n`,
    );
    writeFileSync(
      join(dir.path, "handover.yaml"),
      `task: "Add a limit"\nid: LIMIT-1\ncontext_scope:\n  repos:\n    - name: backend-api\n      paths: ["src/"]\n  max_files: 10\n  max_tokens: 10000\nownership:\n  primary_repo: backend-api\nbudgets:\n  context_read: 5000\n  session_total: 100000\n`,
    );
    process.env.BULKHEAD_HOME = join(dir.path, "home");
    try {
      const dispatched = await cli(["dispatch", join(dir.path, "bulkhead.yaml"), "--spec", join(dir.path, "handover.yaml"), "--json"]);
      expect(dispatched.code).toBe(0);
      expect(dispatched.progress).toEqual([]);
      const { session, report } = JSON.parse(dispatched.out) as { session: string; report: { totalTokens: number } };
      expect(report.totalTokens).toBe(1250);
      const handover = join(dir.path, "handover.md");
      const harvested = await cli(["harvest", session, "--out", handover, "--next", "Frontend handles 429", "--json"]);
      expect(harvested.code).toBe(2);
      const { sha, held } = JSON.parse(harvested.out) as { sha: string; held: { repo: string; file: string }[] };
      expect(held).toEqual([expect.objectContaining({ repo: "frontend", file: "src/api.ts" })]);
      const source = join(dir.path, "backend-api");
      // The lead committed in the source repo itself, on the session's branch there.
      expect(git(source, ["rev-parse", `refs/heads/bulkhead/${session}`])).toBe(sha);
      expect(git(source, ["rev-parse", "--abbrev-ref", "HEAD"])).toBe("main");
      expect(
        git(source, ["show", "--name-only", "--format=%(trailers:key=Bulkhead-Issue,valueonly)", sha]).split("\n").filter(Boolean),
      ).toEqual(["LIMIT-1", "src/limit.ts"]);
      expect(git(source, ["fsck", "--no-progress"])).toBe("");
      const text = readFileSync(handover, "utf8");
      expect(text).toContain("# Handover: Add a limit");
      expect(text).toContain("- added: src/limit.ts");
      expect(text).toContain("- Total: 1,250 tokens");
      expect(text).toMatch(/- Held for approval: p-\S+ frontend src\/api\.ts \(pending\)/);
      expect(text).toContain("- Frontend handles 429");
      const finished = await cli(["finish", session, "--out", handover]);
      expect(finished.code).toBe(2);
      expect(finished.progress).toEqual([
        "reading the workspace (container paused)",
        "checking every changed path against the guard",
        // The same submission as the harvest above: the lead answers with that commit.
        `committing 1 path(s) of backend-api in ${source} through the lead`,
        "recording the change in the source repositories",
      ]);
      expect(git(source, ["rev-parse", `refs/heads/bulkhead/${session}`])).toBe(sha);
      expect(JSON.parse((await cli(["session", "list", "--json"])).out)).toEqual([]);
      writeFileSync(
        join(dir.path, "tight.yaml"),
        readFileSync(join(dir.path, "handover.yaml"), "utf8").replace("context_read: 5000", "context_read: 1"),
      );
      const refused = await cli(["dispatch", join(dir.path, "bulkhead.yaml"), "--spec", join(dir.path, "tight.yaml")]);
      expect(refused.code).toBe(2);
      expect(refused.err).toContain('budget "LIMIT-1" has 1 tokens of contextRead left');
      expect(JSON.parse((await cli(["session", "list", "--json"])).out)).toEqual([]);
      // A second task may write the frontend: its edit is committed there too, and its handover
      // lists no held edit (the first task's proposal is not this task's).
      writeFileSync(
        join(dir.path, "both.yaml"),
        readFileSync(join(dir.path, "handover.yaml"), "utf8")
          .replace("id: LIMIT-1", "id: LIMIT-2")
          .replace("  primary_repo: backend-api\n", "  primary_repo: backend-api\n  allowed_cross_repo_writes: [frontend]\n"),
      );
      const second = JSON.parse(
        (await cli(["dispatch", join(dir.path, "bulkhead.yaml"), "--spec", join(dir.path, "both.yaml"), "--json"])).out,
      ) as { session: string };
      const both = await cli(["finish", second.session, "--out", join(dir.path, "second.md"), "--json"]);
      expect(both.code).toBe(0);
      expect(JSON.parse(both.out)).toMatchObject({
        held: [],
        commits: [
          { repo: "backend-api", files: ["src/limit.ts"] },
          { repo: "frontend", files: ["src/api.ts"] },
        ],
      });
      expect(readFileSync(join(dir.path, "second.md"), "utf8")).not.toContain("Held for approval: p-");
    } finally {
      delete process.env.BULKHEAD_HOME;
    }
  });
});

describe("budget report, hook and continue", () => {
  it("reports usage from a ledger, drives the hook, and writes a continuation prompt", async () => {
    await using dir = createTempDir();
    const { createFileLedger, createTracker } = await import("@bulkhead/budget");
    const ledgerPath = join(dir.path, "ledger.jsonl");
    const ledger = createFileLedger({ path: ledgerPath });
    const tracker = createTracker({ taskId: "rate-limit", ledger });
    tracker.startSpan({ repo: "api", operation: "edit" }).record({
      inputTokens: 1000,
      uncachedInputTokens: 1000,
      cacheReadTokens: 0,
      cacheWrite5mTokens: 0,
      cacheWrite1hTokens: 0,
      outputTokens: 200,
      reasoningTokens: 0,
    });
    await ledger.close();
    const report = JSON.parse((await cli(["budget", "report", ledgerPath, "--json"])).out) as {
      reports: { taskId: string; totalTokens: number }[];
    };
    expect(report.reports.map((entry) => [entry.taskId, entry.totalTokens])).toEqual([["rate-limit", 1200]]);

    const hookDir = join(dir.path, "hook");
    const { createWorkHook } = await import("@bulkhead/git-lead");
    await createWorkHook({ dir: hookDir }).add([{ id: "types" }, { id: "routes", dependsOn: ["types"] }]);
    expect((await cli(["hook", "ready", hookDir])).out).toBe("types\n");
    const claim = JSON.parse((await cli(["hook", "claim", hookDir, "types", "--worker", "agent-1", "--json"])).out) as { token: string };
    // A lost claim race is a refusal (2), not a failure.
    expect((await cli(["hook", "claim", hookDir, "types", "--worker", "agent-2"])).code).toBe(2);
    expect((await cli(["hook", "complete", hookDir, "types", "--token", "wrong"])).code).toBe(1);
    expect((await cli(["hook", "complete", hookDir, "types", "--token", claim.token])).code).toBe(0);
    expect((await cli(["hook", "ready", hookDir])).out).toBe("routes\n");

    const repo = join(dir.path, "api");
    initRepo(repo, { "src/index.ts": "export {};\n" });
    const base = git(repo, ["rev-parse", "HEAD"]);
    dir.write({
      "api/src/limit.ts": "export const limit = 1;\n",
      "spec.yaml": `${spec("rate", ["src/"])}expected_files:\n  - path: src/limit.ts\n    change: create\n  - path: src/routes.ts\n    change: create\n`,
    });
    const continued = await cli(["continue", join(dir.path, "spec.yaml"), "--repo", `api=${repo}`, "--base", `api=${base}`]);
    // Work remains: the task is partial (2), with the prompt for the next agent.
    expect(continued.code).toBe(2);
    expect(continued.err).toContain("1 item(s) remain: the task is partial");
    expect(continued.err).toContain("1. ✅ create `api/src/limit.ts`");
    expect(continued.err).toContain("### 1. create `api/src/routes.ts`\nCurrently: does not exist yet.");
  });
});

describe("bulkhead dispatch under a budget", () => {
  it("stops an agent while it runs once the session total is spent, and exits 2", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "backend-api"), { "src/index.ts": "export {};\n" });
    const agent = new URL("../test/agent-hungry.sh", import.meta.url).pathname;
    writeFileSync(
      join(dir.path, "bulkhead.yaml"),
      `name: hungry\nrepos:\n  - name: backend-api\n    path: backend-api\nimage:\n  files:\n    rootfs/bin/busybox: /bin/busybox\n    rootfs/agent.sh: ${agent}\n  dockerfile: |\n    FROM scratch\n    COPY rootfs/ /\n    RUN ["/bin/busybox", "--install", "-s", "/bin"]\n    RUN ["/bin/busybox", "mkdir", "-p", "-m", "1777", "/tmp"]\nagent:\n  command: ["/bin/sh", "/agent.sh"]\n`,
    );
    writeFileSync(
      join(dir.path, "handover.yaml"),
      `task: "Spend"\nid: SPEND-1\ncontext_scope:\n  repos:\n    - name: backend-api\n      paths: ["src/"]\n  max_files: 10\n  max_tokens: 10000\nownership:\n  primary_repo: backend-api\nbudgets:\n  session_total: 1000\n`,
    );
    process.env.BULKHEAD_HOME = join(dir.path, "home");
    try {
      const dispatched = await cli(["dispatch", join(dir.path, "bulkhead.yaml"), "--spec", join(dir.path, "handover.yaml"), "--json"]);
      const result = JSON.parse(dispatched.out) as {
        session: string;
        exitCode: number;
        stoppedBy: string;
        report: { totalTokens: number };
      };
      expect(result).toMatchObject({ stoppedBy: "session-total", exitCode: 143, report: { totalTokens: 1200 } });
      expect(dispatched.code).toBe(2);
      await cli(["session", "rm", result.session, "--force"]);
    } finally {
      delete process.env.BULKHEAD_HOME;
    }
  });
});

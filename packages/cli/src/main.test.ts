import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTempDir, git, initRepo } from "@bulkhead/test-utils";
import { describe, expect, inject, it } from "vitest";
import { main } from "./main.js";

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, { stdout: (text) => void (out += text), stderr: (text) => void (err += text) });
  return { code, out, err };
}

const spec = (id: string, paths: string[], extra = "") =>
  `task: "${id}"\nid: ${id}\ncontext_scope:\n  repos:\n    - name: api\n      paths: ${JSON.stringify(paths)}\n  max_files: 10\n  max_tokens: 1000\nownership:\n  primary_repo: api\n${extra}`;

describe("bulkhead CLI", () => {
  it("prints help, versions and clear errors with meaningful exit codes", async () => {
    expect((await cli([])).out).toContain("bulkhead plan waves <spec>...");
    expect(await cli(["--version"])).toMatchObject({ code: 0, out: "0.1.0\n" });
    expect((await cli(["lead", "submit", "--help"])).out).toContain("Example:\n  bulkhead lead submit . --issue RATE-1");
    expect(await cli(["nope"])).toMatchObject({ code: 1 });
    expect((await cli(["scope", "resolve", "x.yaml", "--bogus"])).err).toContain("Unknown option '--bogus'");
    const missing = await cli(["scope", "resolve", "missing.yaml", "--json"]);
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.out).error.code).toBe("INVALID_ARGUMENT");
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
    expect(JSON.parse(waves.out)).toEqual({ waves: [["a"], ["b"], ["c"]] });
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
      expect(JSON.parse((await cli(["code", "fetch", id, "--json"])).out)).toEqual([
        expect.objectContaining({ repo: "app", status: "unchanged" }),
      ]);
      expect((await cli(["session", "rm", id])).code).toBe(0);
      expect(JSON.parse((await cli(["session", "list", "--json"])).out)).toEqual([]);
    } finally {
      delete process.env.BULKHEAD_HOME;
    }
  });
});

import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createTempDir } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { agentImage, createRateLimitWorkspace, handoverYaml } from "../rate-limit/run-demo.js";

const script = fileURLToPath(new URL("dispatch.sh", import.meta.url));
// The script runs the built command, as CI would; `npm test` builds before it tests.
const bin = fileURLToPath(new URL("../../packages/cli/dist/bin.js", import.meta.url));

describe("the CI shell-script example", () => {
  it("dispatches what fits, skips what the budget refuses, finishes with one commit and the held edit", async () => {
    expect(existsSync(bin), "build the packages first (npm run build)").toBe(true);
    await using dir = createTempDir();
    const { repos } = createRateLimitWorkspace(dir.path);
    writeFileSync(
      join(dir.path, "bulkhead.yaml"),
      JSON.stringify({
        name: "ci-example",
        repos: [
          { name: "backend-api", path: repos["backend-api"] },
          { name: "shared-types", path: repos["shared-types"], mode: "mount-ro" },
          { name: "frontend", path: repos.frontend },
        ],
        image: agentImage,
        agent: { command: ["/bin/sh", "/agent.sh"] },
      }),
    );
    mkdirSync(join(dir.path, "tasks"));
    writeFileSync(join(dir.path, "tasks", "rate-limit.yaml"), handoverYaml);
    writeFileSync(
      join(dir.path, "tasks", "too-big.yaml"),
      handoverYaml.replace("id: rate-limit", "id: too-big").replace("context_read: 50000", "context_read: 10"),
    );

    const out = join(dir.path, "out");
    const run = spawnSync("sh", [script, join(dir.path, "bulkhead.yaml"), join(dir.path, "tasks"), out], {
      env: { ...process.env, BULKHEAD: `${process.execPath} ${bin}`, BULKHEAD_HOME: join(dir.path, "home") },
      encoding: "utf8",
    });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);

    const summary = readFileSync(join(out, "summary.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { task: string; result: string; session: string; commit: string });
    expect(summary.map((entry) => [entry.task, entry.result])).toEqual([
      ["rate-limit", "held"],
      ["too-big", "refused"],
    ]);
    expect(run.stdout).toContain('too-big: refused: budget "too-big" has 10 tokens of contextRead left');

    const [done] = summary;
    const git = (args: string[]) => execFileSync("git", args, { cwd: repos["backend-api"], encoding: "utf8" }).trim();
    expect(git(["rev-parse", `refs/heads/bulkhead/${done!.session}`])).toBe(done!.commit);
    expect(git(["show", "--name-only", "--format=%s", done!.commit]).split("\n").filter(Boolean)).toEqual([
      "Add rate limiting to user API",
      "src/middleware/rateLimit.ts",
      "src/routes/index.ts",
    ]);
    expect(git(["fsck", "--no-progress"])).toBe("");
    expect(readFileSync(join(out, "rate-limit.handover.md"), "utf8")).toMatch(/Held for approval: p-\S+ frontend src\/api\.ts/);
    const sessions = execFileSync(process.execPath, [bin, "session", "list", "--json"], {
      env: { ...process.env, BULKHEAD_HOME: join(dir.path, "home") },
      encoding: "utf8",
    });
    expect(JSON.parse(sessions)).toEqual([]);
  });
});

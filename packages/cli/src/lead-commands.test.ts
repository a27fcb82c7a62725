import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join, relative } from "node:path";
import { createTempDir, git, initRepo, type TempDir } from "@bulkhead/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { main } from "./main.js";

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, { stdout: (text) => void (out += text), stderr: (text) => void (err += text), progress: () => {} });
  return { code, out, err };
}

/** Every file under `root` (the working tree and `.git` alike), path → hash of its bytes. */
function snapshot(root: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else files[relative(root, path)] = createHash("sha256").update(readFileSync(path)).digest("hex");
    }
  };
  walk(root);
  return files;
}

describe("bulkhead lead status / recover on a crashed lead's repository", () => {
  let dir: TempDir;
  let repo: string;
  beforeEach(() => {
    dir = createTempDir();
    repo = join(dir.path, "api");
    initRepo(repo, { "src/index.ts": "export {};\n" });
  });
  afterEach(() => dir.remove());

  it("lead status changes nothing on disk and reports the pending work; lead recover settles it", async () => {
    dir.write({ "api/src/a.ts": "a\n" });
    const submitted = await cli([
      "lead",
      "submit",
      repo,
      "--issue",
      "C-1",
      "--worker",
      "w",
      "--message",
      "Add a",
      "--id",
      "landed",
      "src/a.ts",
      "--json",
    ]);
    expect(submitted.code).toBe(0);
    const sha = (JSON.parse(submitted.out) as { sha: string }).sha;

    // The state a lead killed mid-way leaves: its commit landed but neither its outcome nor its
    // result were written (the entry still queued, the index not yet refreshed), a second intent
    // whose ref never moved, and the lock of a process that is gone.
    const state = join(repo, ".git/bulkhead");
    const lines = readFileSync(join(state, "journal.jsonl"), "utf8").trim().split("\n");
    const ghost = {
      type: "intent",
      id: "ghost",
      issueId: "C-2",
      worker: "w",
      parent: sha,
      commit: "0".repeat(40),
      paths: ["src/b.ts"],
      fence: 9,
      at: new Date().toISOString(),
      gates: [],
    };
    writeFileSync(
      join(state, "journal.jsonl"),
      `${[...lines.filter((line) => !line.includes('"type":"committed"')), JSON.stringify(ghost)].join("\n")}\n`,
    );
    rmSync(join(state, "results", "landed.json"));
    writeFileSync(
      join(state, "queue", "landed.json"),
      JSON.stringify({
        id: "landed",
        queuedAt: "0",
        issueId: "C-1",
        worker: "w",
        message: "Add a",
        files: ["src/a.ts"],
        gates: [],
        owner: { pid: 1, lead: "gone" },
      }),
    );
    git(repo, ["rm", "--cached", "-q", "src/a.ts"]);
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
    writeFileSync(
      join(state, "lead.lock"),
      JSON.stringify({ pid: Number(dead.stdout), host: hostname(), token: "t", at: Date.now(), expiresAt: Date.now() + 60_000 }),
    );
    const before = snapshot(repo);

    const status = await cli(["lead", "status", repo, "--json"]);
    expect(snapshot(repo)).toEqual(before);
    expect(status.code).toBe(0);
    const data = JSON.parse(status.out) as { recoveryPending: string[]; leadAlive: boolean; inFlight: string; queue: string[] };
    expect(data).toMatchObject({ leadAlive: false, inFlight: "landed", queue: ["landed"] });
    expect(data.recoveryPending.sort()).toEqual(["ghost", "landed"]);
    const text = await cli(["lead", "status", repo]);
    expect(text.out).toContain(`recovery pending: `);
    expect(text.out).toContain(`run bulkhead lead recover ${repo}`);
    expect(snapshot(repo)).toEqual(before);

    const recovered = await cli(["lead", "recover", repo, "--json"]);
    expect(JSON.parse(recovered.out)).toEqual({ finished: ["landed"], rolledBack: ["ghost"] });
    expect(git(repo, ["status", "--porcelain"])).toBe("");
    expect(git(repo, ["rev-parse", "HEAD"])).toBe(sha);
    const after = JSON.parse((await cli(["lead", "status", repo, "--json"])).out) as {
      recoveryPending: string[];
      recentCommits: unknown[];
    };
    expect(after).toMatchObject({ recoveryPending: [], recentCommits: [{ id: "landed", issueId: "C-1", sha }] });
  });
});

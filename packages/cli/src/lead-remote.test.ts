// `bulkhead lead … --remote <url>`: the lead lands its commit on a real bare remote (pushed with a
// lease on the tip), rebuilds on the new tip when another host landed first, and every result is
// checked with the real git.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTempDir, git, initRepo } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { main } from "./main.js";

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, { stdout: (text) => void (out += text), stderr: (text) => void (err += text), progress: () => undefined });
  return { code, out, err };
}

describe("bulkhead lead --remote", () => {
  it("lands one commit per issue on the shared bare remote, rebuilt on the tip another host pushed", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "seed"), { "README.md": "# shared\n" });
    const remote = join(dir.path, "remote.git");
    git(dir.path, ["clone", "--quiet", "--bare", join(dir.path, "seed"), remote]);
    // Two hosts, each with the lead's own clone of the remote.
    const hostA = join(dir.path, "host-a");
    const hostB = join(dir.path, "host-b");
    for (const host of [hostA, hostB]) git(dir.path, ["clone", "--quiet", remote, host]);
    const seedTip = git(remote, ["rev-parse", "main"]);

    writeFileSync(join(hostA, "a.txt"), "a\n");
    const first = await cli([
      "lead",
      "submit",
      hostA,
      "--remote",
      remote,
      "--issue",
      "R-1",
      "--worker",
      "w1",
      "--message",
      "Add a",
      "a.txt",
      "--json",
    ]);
    expect(first.code, first.out).toBe(0);
    const a = JSON.parse(first.out) as { status: string; sha: string; id: string };
    expect(a.status).toBe("committed");
    // The remote has it, with the submission in its trailers, on top of the seed.
    expect(git(remote, ["rev-parse", "main"])).toBe(a.sha);
    expect(git(remote, ["rev-parse", "main^"])).toBe(seedTip);
    expect(git(remote, ["log", "-1", "--format=%B", "main"])).toBe(
      `Add a\n\nBulkhead-Issue: R-1\nBulkhead-Worker: w1\nBulkhead-Submission: ${a.id}`,
    );

    // Host B's clone is behind: its lead builds on the remote's tip, not on its own stale branch.
    writeFileSync(join(hostB, "b.txt"), "b\n");
    const second = await cli([
      "lead",
      "submit",
      hostB,
      "--remote",
      remote,
      "--issue",
      "R-2",
      "--worker",
      "w2",
      "--message",
      "Add b",
      "b.txt",
      "--json",
    ]);
    expect(second.code, second.out).toBe(0);
    const b = JSON.parse(second.out) as { sha: string };
    expect(git(remote, ["rev-list", "--first-parent", "main"]).split("\n")).toEqual([b.sha, a.sha, seedTip]);
    expect(git(remote, ["ls-tree", "-r", "--name-only", "main"]).split("\n")).toEqual(["README.md", "a.txt", "b.txt"]);
    expect(git(remote, ["fsck", "--strict", "--no-dangling", "--no-progress"])).toBe("");
    // The lead's own branch follows the remote.
    expect(git(hostB, ["rev-parse", "main"])).toBe(b.sha);

    // status and recover take the flag too (nothing pending here); a bad remote is wrong usage naming the flag.
    expect((await cli(["lead", "status", hostB, "--remote", remote, "--json"])).code).toBe(0);
    const recovered = await cli(["lead", "recover", hostB, "--remote", remote, "--json"]);
    expect(recovered.code).toBe(0);
    expect(JSON.parse(recovered.out)).toMatchObject({ finished: [], rolledBack: [] });
    const bad = await cli(["lead", "status", hostB, "--remote=ext::sh -c id"]);
    expect(bad).toMatchObject({ code: 1, err: expect.stringContaining("--remote: expected the shared remote") });
    expect(git(remote, ["rev-parse", "main"])).toBe(b.sha);
  });
});

import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ChangedPath } from "@bulkhead/core";
import { createTempDir, git, initRepo, type TempDir } from "@bulkhead/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createCommitLead } from "./create-commit-lead.js";
import { tryAcquireLeadLock } from "./lead-lock.js";

const author = { name: "Lead", email: "lead@example.com" };
const blobOid = (bytes: Uint8Array) => createHash("sha1").update(`blob ${bytes.byteLength}\0`).update(bytes).digest("hex");
const file = (path: string, text: string, kind: "added" | "modified" = "added", mode: "100644" | "100755" = "100644"): ChangedPath => {
  const bytes = Buffer.from(text);
  return { path, kind, entry: { type: "file", mode, bytes, oid: blobOid(bytes) } };
};

/** A script that, if anything on the host ever runs it, leaves a line in the canary file. */
function plantCanary(dir: TempDir): { script: string; canary: string } {
  const canary = join(dir.path, "canary");
  const script = join(dir.path, "canary.sh");
  writeFileSync(script, `#!/bin/sh\necho "ran $0 $*" >> ${canary}\ncat\n`);
  chmodSync(script, 0o755);
  return { script, canary };
}

/** Config, hooks and attributes that run the canary if git ever runs in this repo. */
function armRepo(repo: string, script: string): void {
  git(repo, ["config", "core.fsmonitor", script]);
  git(repo, ["config", "filter.canary.clean", script]);
  git(repo, ["config", "filter.canary.smudge", script]);
  git(repo, ["config", "core.pager", script]);
  mkdirSync(join(repo, ".git", "info"), { recursive: true });
  writeFileSync(join(repo, ".git", "info", "attributes"), "* filter=canary\n");
  for (const hook of ["post-index-change", "reference-transaction", "post-commit", "pre-commit", "post-checkout"]) {
    writeFileSync(join(repo, ".git", "hooks", hook), `#!/bin/sh\n${script} hook-${hook}\n`);
    chmodSync(join(repo, ".git", "hooks", hook), 0o755);
  }
}

describe("the lead, against hostile input", () => {
  let dir: TempDir;
  let repo: string;
  beforeEach(() => {
    dir = createTempDir();
    repo = join(dir.path, "source");
    initRepo(repo, { "src/index.ts": "export const a = 1;\n", "src/old.ts": "old\n", "README.md": "# source\n" });
  });
  afterEach(() => dir.remove());

  it("commits a change set's bytes into the source repo, never reading a working tree, and brings the clean checkout along", async () => {
    const lead = await createCommitLead({ dir: repo, author });
    const target = Buffer.from("../README.md");
    const changes: ChangedPath[] = [
      file("src/index.ts", "export const a = 2;\n", "modified"),
      file("src/new\nline ünï.ts", "odd name\n"),
      file("bin/run.sh", "#!/bin/sh\necho hi\n", "added", "100755"),
      { path: "src/old.ts", kind: "deleted", base: { mode: "100644", oid: blobOid(Buffer.from("old\n")) } },
      { path: "docs/readme-link", kind: "added", entry: { type: "link", mode: "120000", target: "../README.md", oid: blobOid(target) } },
    ];
    const result = await lead.submit({ issueId: "CS-1", worker: "session-1", changes, message: "From a change set" });
    expect(result).toMatchObject({ status: "committed", issueId: "CS-1" });
    if (result.status !== "committed") throw new Error("expected a commit");
    expect((result as { checkoutNotUpdated?: unknown }).checkoutNotUpdated).toBeUndefined();
    expect(result).not.toHaveProperty("indexNotRefreshed");
    expect(git(repo, ["rev-parse", "HEAD"])).toBe(result.sha);
    expect(git(repo, ["fsck", "--full", "--strict", "--no-progress"])).toBe("");
    expect(git(repo, ["show", "--name-status", "--format=", "-z", "HEAD"]).split("\0").filter(Boolean)).toEqual([
      "A",
      "bin/run.sh",
      "A",
      "docs/readme-link",
      "M",
      "src/index.ts",
      "A",
      "src/new\nline ünï.ts",
      "D",
      "src/old.ts",
    ]);
    expect(git(repo, ["ls-tree", "-r", "HEAD", "--", "bin/run.sh", "docs/readme-link"])).toMatch(
      /^100755 blob .*\tbin\/run.sh\n120000 blob .*\tdocs\/readme-link$/,
    );
    expect(git(repo, ["show", "HEAD:src/index.ts"])).toBe("export const a = 2;");
    // The checkout of the branch was clean at those paths: it now holds the commit, and git agrees.
    expect(readFileSync(join(repo, "src/index.ts"), "utf8")).toBe("export const a = 2;\n");
    expect(existsSync(join(repo, "src/old.ts"))).toBe(false);
    expect(git(repo, ["status", "--porcelain"])).toBe("");
    await lead.close();
  });

  it("refuses a change whose bytes do not hash to the oid it claims, before anything is queued", async () => {
    const lead = await createCommitLead({ dir: repo, author });
    const forged: ChangedPath = {
      ...file("src/index.ts", "evil\n", "modified"),
      entry: { ...file("src/index.ts", "good\n").entry!, bytes: Buffer.from("evil\n") } as ChangedPath["entry"] & object,
    };
    await expect(lead.submit({ issueId: "CS-2", worker: "w", changes: [forged], message: "m" })).rejects.toThrow(
      /hash to [0-9a-f]{40}, not the/,
    );
    await expect(
      lead.submit({ issueId: "CS-2", worker: "w", changes: [file("src/index.ts", "x")], files: ["src/index.ts"], message: "m" }),
    ).rejects.toThrow("give files (read from disk) or changes (a change set's paths), not both");
    expect((await lead.status()).queue).toEqual([]);
    expect(git(repo, ["rev-list", "--count", "HEAD"])).toBe("1");
    await lead.close();
  });

  it("leaves a path with local changes in the checkout as it was, and reports it", async () => {
    writeFileSync(join(repo, "src/index.ts"), "the user's own edit\n");
    const lead = await createCommitLead({ dir: repo, author });
    const result = await lead.submit({
      issueId: "CS-3",
      worker: "w",
      changes: [file("src/index.ts", "from the agent\n", "modified"), file("src/b.ts", "b\n")],
      message: "m",
    });
    expect(result).toMatchObject({
      status: "committed",
      checkoutNotUpdated: [{ workdir: repo, path: "src/index.ts", reason: "has local changes in the working tree" }],
    });
    expect(readFileSync(join(repo, "src/index.ts"), "utf8")).toBe("the user's own edit\n");
    expect(git(repo, ["show", "HEAD:src/index.ts"])).toBe("from the agent");
    expect(readFileSync(join(repo, "src/b.ts"), "utf8")).toBe("b\n");
    expect(git(repo, ["status", "--porcelain"]).split("\n")).toEqual(["MM src/index.ts"]);
    expect(git(repo, ["fsck", "--full", "--no-progress", "--no-dangling"])).toBe("");
    await lead.close();
  });

  it("never commits a file through a link in its path (etclink/hostname), as git refuses 'beyond a symbolic link'", async () => {
    symlinkSync("/etc", join(repo, "etclink"));
    mkdirSync(join(repo, "real"));
    symlinkSync("real", join(repo, "inlink"));
    writeFileSync(join(repo, "real/x.txt"), "x\n");
    const lead = await createCommitLead({ dir: repo, author });
    for (const path of ["etclink/hostname", "inlink/x.txt"]) {
      expect(await lead.submit({ issueId: `L-${path.length}`, worker: "w", files: [path], message: "m" })).toMatchObject({
        status: "rejected",
        reason: expect.stringContaining("is beyond a symbolic link"),
      });
    }
    expect(git(repo, ["rev-list", "--count", "HEAD"])).toBe("1");
    expect(() => git(repo, ["add", "etclink/hostname"])).toThrow(/beyond a symbolic link/);
    // The link itself is a fine thing to commit: as a link, never followed.
    expect(await lead.submit({ issueId: "L-link", worker: "w", files: ["etclink"], message: "m" })).toMatchObject({ status: "committed" });
    expect(git(repo, ["ls-tree", "HEAD", "etclink"])).toMatch(/^120000 blob /);
    expect(git(repo, ["fsck", "--full", "--no-progress", "--no-dangling"])).toBe("");
    await lead.close();
  });

  it("runs no git in its repo: an index v4 with fsmonitor, hooks and filters armed is refreshed without the canary ever running", async () => {
    const { script, canary } = plantCanary(dir);
    git(repo, ["update-index", "--index-version", "4"]);
    armRepo(repo, script);
    rmSync(canary, { force: true });
    writeFileSync(join(repo, "src/index.ts"), "export const a = 3;\n");
    writeFileSync(join(repo, "src/c.ts"), "c\n");
    const lead = await createCommitLead({ dir: repo, author });
    const fromFiles = await lead.submit({ issueId: "V4-1", worker: "w", files: ["src/index.ts", "src/c.ts"], message: "files" });
    const fromChanges = await lead.submit({ issueId: "V4-2", worker: "w", changes: [file("src/d.ts", "d\n")], message: "changes" });
    expect(fromFiles).toMatchObject({ status: "committed" });
    expect(fromChanges).toMatchObject({ status: "committed" });
    expect(fromFiles).not.toHaveProperty("indexNotRefreshed");
    expect(existsSync(canary)).toBe(false);
    // Checked with git itself, the canary disarmed: the index is v4 still, and clean at those paths.
    const plain = [
      "-c",
      "core.fsmonitor=",
      "-c",
      "core.hooksPath=/dev/null",
      "-c",
      "filter.canary.clean=",
      "-c",
      "filter.canary.smudge=",
      "-c",
      "filter.canary.required=false",
    ];
    rmSync(join(repo, ".git", "info", "attributes"));
    expect(readFileSync(join(repo, ".git", "index")).readUInt32BE(4)).toBe(4);
    expect(git(repo, [...plain, "status", "--porcelain"])).toBe("");
    expect(git(repo, [...plain, "fsck", "--full", "--no-progress"])).toBe("");
    expect(git(repo, [...plain, "log", "--format=%s"])).toBe("changes\nfiles\ninitial");
    expect(existsSync(canary)).toBe(false);
    await lead.close();
  });

  it("runs a change set's gates in a fresh checkout of the candidate commit, and clears a function gate's timer", async () => {
    const seen: string[] = [];
    const lead = await createCommitLead({
      dir: repo,
      author,
      gates: [
        {
          name: "sees-the-commit",
          timeoutMs: 8000,
          run: ({ dir: gateDir, files }) => {
            seen.push(readFileSync(join(gateDir, "src/index.ts"), "utf8"), String(existsSync(join(gateDir, "src/old.ts"))), ...files);
            return { ok: true };
          },
        },
      ],
    });
    const timers = () => process.getActiveResourcesInfo().filter((name) => name === "Timeout").length;
    const before = timers();
    const result = await lead.submit({
      issueId: "G-1",
      worker: "w",
      changes: [file("src/index.ts", "gated\n", "modified"), { path: "src/old.ts", kind: "deleted" }],
      message: "m",
    });
    expect(result).toMatchObject({ status: "committed", gates: [{ name: "sees-the-commit", ok: true }] });
    expect(seen).toEqual(["gated\n", "false", "src/index.ts", "src/old.ts"]);
    // The 8 s timeout timer was cleared: no timer of the lead's is left to keep the process alive.
    expect(timers()).toBe(before);
    await lead.close();
  });
});

describe("gates belong to the submission", () => {
  let dir: TempDir;
  let repo: string;
  beforeEach(() => {
    dir = createTempDir();
    repo = join(dir.path, "source");
    initRepo(repo, { "README.md": "# source\n" });
  });
  afterEach(() => dir.remove());

  const submitter = new URL("../test/gate-submitter.ts", import.meta.url).pathname;
  const spawnSubmitter = (gates: unknown, file: string, id: string): ChildProcess =>
    spawn(process.execPath, ["--import", "tsx", submitter, repo, JSON.stringify(gates), file, id], {
      cwd: join(import.meta.dirname, ".."),
      stdio: ["ignore", "pipe", "inherit"],
    });
  const output = (child: ChildProcess) =>
    new Promise<string>((resolve) => {
      let text = "";
      child.stdout!.on("data", (chunk: Buffer) => (text += chunk.toString()));
      child.on("exit", () => resolve(text));
    });
  const queued = (id: string) => existsSync(join(repo, ".git/bulkhead/queue", `${id}.json`));

  it("a submission made with --gate false in one process is not committed by another process whose own gate passes", async () => {
    writeFileSync(join(repo, "theirs.txt"), "theirs\n");
    writeFileSync(join(repo, "mine.txt"), "mine\n");
    let child: ChildProcess | undefined;
    let childOutput: Promise<string> | undefined;
    // This process leads, and while its own gate runs, the other process queues its submission.
    const lead = await createCommitLead({
      dir: repo,
      author,
      gates: [
        {
          name: "true",
          run: async () => {
            child ??= spawnSubmitter([{ name: "false", command: ["false"] }], "theirs.txt", "theirs");
            childOutput ??= output(child);
            while (!queued("theirs")) await new Promise((resolve) => setTimeout(resolve, 10));
            return { ok: true, output: "passed" };
          },
        },
      ],
    });
    expect(await lead.submit({ issueId: "MINE-1", worker: "me", files: ["mine.txt"], message: "mine", id: "mine" })).toMatchObject({
      status: "committed",
    });
    const theirs = JSON.parse(await childOutput!) as { status: string; reason: string; gates: { name: string; ok: boolean }[] };
    expect(theirs).toMatchObject({ status: "rejected", reason: "gate false failed", gates: [{ name: "false", ok: false }] });
    expect(git(repo, ["log", "--format=%s"])).toBe("mine\ninitial");
    expect(git(repo, ["ls-tree", "-r", "--name-only", "HEAD"]).split("\n")).toEqual(["README.md", "mine.txt"]);
    expect(git(repo, ["fsck", "--full", "--no-progress", "--no-dangling"])).toBe("");
    await lead.close();
  });

  it("a recovered submission runs its own gates; one whose gates cannot run is refused, never committed without them", async () => {
    const state = join(repo, ".git/bulkhead");
    // Hold the lead lock so the submitters can only queue, then kill them: their entries are left behind.
    const lock = (await tryAcquireLeadLock(state, { leaseMs: 60_000 }))!;
    const left: Record<string, unknown> = {
      "gated-fail": [{ name: "false", command: ["false"] }],
      "gated-pass": [{ name: "true", command: ["true"] }],
    };
    for (const [id, gates] of Object.entries(left)) {
      writeFileSync(join(repo, `${id}.txt`), `${id}\n`);
      const child = spawnSubmitter(gates, `${id}.txt`, id);
      while (!queued(id)) await new Promise((resolve) => setTimeout(resolve, 10));
      child.kill("SIGKILL");
      await new Promise((resolve) => child.on("exit", resolve));
    }
    // An entry queued by an older lead, without its gate list, and one with a function gate whose process is gone.
    const legacy = JSON.parse(readFileSync(join(state, "queue", "gated-pass.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(join(repo, "legacy.txt"), "legacy\n");
    writeFileSync(
      join(state, "queue", "legacy.json"),
      JSON.stringify({ ...legacy, id: "legacy", issueId: "GATE-legacy", files: ["legacy.txt"], gates: undefined }),
    );
    writeFileSync(
      join(state, "queue", "orphan.json"),
      JSON.stringify({
        ...legacy,
        id: "orphan",
        issueId: "GATE-orphan",
        files: ["legacy.txt"],
        gates: [{ name: "lint", function: true }],
        owner: { pid: 999_999_999, lead: "gone" },
      }),
    );
    await lock.release();
    // A lead with no gates of its own picks them up, in order.
    const lead = await createCommitLead({ dir: repo, author });
    writeFileSync(join(repo, "last.txt"), "last\n");
    expect(await lead.submit({ issueId: "LAST", worker: "w", files: ["last.txt"], message: "last" })).toMatchObject({
      status: "committed",
    });
    const result = (id: string) => lead.submit({ issueId: `GATE-${id}`, worker: "w", files: ["x"], message: "m", id });
    expect(await result("gated-fail")).toMatchObject({
      status: "rejected",
      reason: "gate false failed",
      gates: [{ name: "false", ok: false }],
    });
    expect(await result("gated-pass")).toMatchObject({ status: "committed", gates: [{ name: "true", ok: true }] });
    expect(await result("legacy")).toMatchObject({ status: "rejected", reason: expect.stringContaining("without its gate list") });
    expect(await result("orphan")).toMatchObject({
      status: "rejected",
      reason: expect.stringContaining("function gate lint belonged to process 999999999"),
    });
    expect(git(repo, ["log", "--format=%s"])).toBe("last\nfrom gated-pass\ninitial");
    expect(git(repo, ["fsck", "--full", "--no-progress", "--no-dangling"])).toBe("");
    await lead.close();
  });
});

// The boundary inward, tried as an attacker would: an agent that owns its clone's .git, index and
// working tree tries to make the host run something, read host paths, or corrupt the source
// repository, through every host-side read of the workspace (changes, uncommitted, fetchCode,
// worktree jobs). Real engine, real git. Every canary is a file under the host's temp directory
// that only a command run on the host could create.
import { execFileSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ChangedPath } from "@bulkhead/core";
import { createTempDir, git, gitInWorkspace, initRepo, type TempDir } from "@bulkhead/test-utils";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { createSession } from "./create-session.js";
import { defineProject } from "./project-config.js";
import type { Session } from "./session.js";

const image = inject("testImage");

const BASE = { "src/index.ts": "export {};\n", "README.md": "# app\n", "run.sh": "echo run\n", "docs/a.md": "# a\n" };

/** Every blob of a commit in a repo, by path, from `git ls-tree -r -z` (names exactly as stored). */
function treeOf(repo: string, commit: string): Map<string, { mode: string; oid: string }> {
  const out = execFileSync("git", ["-C", repo, "ls-tree", "-r", "-z", commit]);
  const tree = new Map<string, { mode: string; oid: string }>();
  for (const record of out.toString("utf8").split("\0").filter(Boolean)) {
    const [meta, path] = [record.slice(0, record.indexOf("\t")), record.slice(record.indexOf("\t") + 1)];
    const [mode, , oid] = meta.split(" ");
    tree.set(path, { mode: mode!, oid: oid! });
  }
  return tree;
}

const summary = (paths: readonly ChangedPath[]) =>
  paths.map((change) => [
    change.path,
    change.kind,
    change.entry?.type === "file"
      ? `${change.entry.mode}:${Buffer.from(change.entry.bytes).toString("utf8")}`
      : change.entry?.type === "link"
        ? `link:${change.entry.target}`
        : "-",
  ]);

describe("a hostile workspace (the boundary inward)", () => {
  let dir: TempDir;
  let source: string;
  let canaries: string;
  let session: Session;

  beforeEach(async () => {
    dir = createTempDir();
    source = join(dir.path, "app");
    canaries = join(dir.path, "canaries");
    mkdirSync(canaries);
    initRepo(source, BASE);
    const project = defineProject({ name: "hostile-git", repos: [{ name: "app", path: source }], image: { existing: image } });
    session = await createSession(project, { home: join(dir.path, "home") });
  });
  afterEach(async () => {
    await session?.remove({ force: true }).catch(() => undefined);
    dir.remove();
  });

  const clone = () => join(session.state.workspace, "app");
  const agent = async (script: string) => {
    const result = await session.exec(["/bin/sh", "-c", `set -e; cd /workspace/app; ${script}`]);
    expect(result, result.stderr).toMatchObject({ exitCode: 0 });
  };
  const touch = (name: string) => `touch ${join(canaries, name)}`;
  const fired = () => readdirSync(canaries);
  const fsck = () => execFileSync("git", ["-C", source, "fsck", "--no-progress", "--strict"], { encoding: "utf8" });

  it("runs nothing its git config names: filters named with = and ., includeIf, fsmonitor, pager, hooks, a racily clean v4 index", async () => {
    // The agent's own git work first (the host test stands in for git inside the container).
    writeFileSync(join(clone(), "src", "feature.ts"), "export const feature = 1;\n");
    gitInWorkspace(clone(), ["add", "src/feature.ts"]);
    gitInWorkspace(clone(), ["commit", "--quiet", "-m", "Add feature"]);
    gitInWorkspace(clone(), ["update-index", "--index-version", "4"]);
    // What the host wrote, as root, goes back to the container's user.
    execFileSync("chown", ["-R", session.state.user, clone()]);
    const filter = (name: string) =>
      [
        `[filter "${name}"]`,
        `\\tclean = ${touch(`clean-${name}`)}; cat`,
        `\\tsmudge = ${touch(`smudge-${name}`)}; cat`,
        "\\tprocess = " + touch(`process-${name}`),
        "\\trequired = true",
      ].join("\\n");
    const config = [
      "[core]",
      `\\tfsmonitor = ${touch("fsmonitor")}; false`,
      `\\tpager = ${touch("pager")}; cat`,
      `\\tsshCommand = ${touch("ssh")}`,
      filter("x=y"),
      filter("a.b"),
      filter("with space"),
      '[includeIf "onbranch:bulkhead/jobs/**"]',
      "\\tpath = onbranch.inc",
      '[includeIf "gitdir:**/worktrees/**"]',
      "\\tpath = gitdir.inc",
      "",
    ].join("\\n");
    const hooks = [
      "post-checkout",
      "pre-commit",
      "post-commit",
      "reference-transaction",
      "post-index-change",
      "pre-auto-gc",
      "fsmonitor-watchman",
    ];
    await agent(
      [
        `printf '${config}' >> .git/config`,
        `printf '${filter("onbranch")}\\n' > .git/onbranch.inc`,
        `printf '${filter("gitdir")}\\n' > .git/gitdir.inc`,
        "mkdir -p .git/info",
        "printf '* filter=gitdir\\n*.md filter=a.b\\nrun.sh filter=onbranch\\nsrc/index.ts filter=x=y\\n' > .git/info/attributes",
        "printf '*.ts filter=x=y\\n' > .gitattributes",
        ...hooks.map((hook) => `printf '#!/bin/sh\\n${touch(`hook-${hook}`)}\\n' > .git/hooks/${hook} && chmod +x .git/hooks/${hook}`),
        // Same size and time as before, and the index stamped with that time: racily clean, so
        // git compares content (through the clean filter) instead of trusting the stat data.
        "touch -r src/index.ts /tmp/stamp",
        "printf 'export  {}\\n' > src/index.ts",
        "touch -r /tmp/stamp src/index.ts",
        "touch -r /tmp/stamp .git/index",
      ].join(" && "),
    );
    // Every host-side read first, then the canaries: none may have fired.
    const uncommitted = await session.uncommitted().catch((error: unknown) => error);
    const [fetched] = await session.fetchCode({ strict: true }).catch(() => []);
    const job = await session
      .inject({ command: ["/bin/sh", "-c", "cat src/index.ts"], worktree: true })
      .then((started) => started.wait())
      .catch((error: unknown) => error);
    expect(fired()).toEqual([]);
    expect(job).toEqual({ exitCode: 0 });
    expect(uncommitted).toEqual({ app: [".gitattributes", "src/index.ts"] });
    expect(fetched).toMatchObject({ status: "fetched", commits: 1, changedFiles: [".gitattributes", "src/feature.ts", "src/index.ts"] });
    const changes = await session.changes();
    expect(summary(changes.repos[0]!.paths)).toEqual([
      [".gitattributes", "added", "100644:*.ts filter=x=y\n"],
      ["src/feature.ts", "added", "100644:export const feature = 1;\n"],
      ["src/index.ts", "modified", "100644:export  {}\n"],
    ]);
    expect(changes.repos[0]!.commits.map((commit) => commit.message.trim())).toEqual(["Add feature"]);
    expect(fired()).toEqual([]);
    expect(fsck()).toBe("");
  });

  it("never lists or reads a host path: core.worktree=/root, links to host files and directories, a link loop, a symlinked .git", async () => {
    await agent(
      [
        "printf '[core]\\n\\tworktree = /root\\n' >> .git/config",
        "ln -s /etc/passwd leak",
        "ln -s /etc etc",
        "ln -s . loop",
        "mkdir -p deep/er && ln -s ../.. deep/er/up",
      ].join(" && "),
    );
    const expected = [
      ["deep/er/up", "added", "link:../.."],
      ["etc", "added", "link:/etc"],
      ["leak", "added", "link:/etc/passwd"],
      ["loop", "added", "link:."],
    ];
    expect(await session.uncommitted()).toEqual({ app: expected.map(([path]) => path) });
    expect(summary((await session.changes()).repos[0]!.paths)).toEqual(expected);
    // The agent points its .git at the source repository on the host.
    await agent(`rm -rf .git && ln -s ${join(source, ".git")} .git`);
    const before = git(source, ["for-each-ref"]);
    const changes = await session.changes();
    expect(summary(changes.repos[0]!.paths)).toEqual(expected);
    expect(changes.repos[0]!.headSha).toBe(session.state.repos[0]!.baseSha);
    expect(changes.repos[0]!.skipped).toEqual([{ path: ".git", reason: expect.stringContaining("is not a directory") }]);
    const [fetched] = await session.fetchCode();
    expect(fetched).toMatchObject({ status: "fetched" });
    // Links arrive as links, never as what they point at.
    const tree = treeOf(source, fetched!.commit!);
    expect(tree.get("leak")?.mode).toBe("120000");
    expect(git(source, ["cat-file", "blob", tree.get("leak")!.oid])).toBe("/etc/passwd");
    expect(git(source, ["for-each-ref"]).replace(/^.*refs\/bulkhead\/.*$\n?/m, "")).toBe(before.replace(/^.*refs\/bulkhead\/.*$\n?/m, ""));
    expect(fired()).toEqual([]);
    expect(fsck()).toBe("");
  });

  it("reports exactly the paths and bytes that changed: unicode and newline names, modes, links, deletions, special files, a size cap, .gitignore", async () => {
    await agent(
      [
        "printf 'two\\nlines' > \"$(printf 'new\\nline.txt')\"",
        "echo hi > 'ünïcödé 名前.md'",
        "echo q > 'q\"uote\\back.txt'",
        "rm README.md",
        "chmod +x run.sh",
        "ln -s src/index.ts to-index",
        "mkfifo pipe",
        "head -c 5000 /dev/zero > big.bin",
        "printf 'ignored/\\n*.log\\n' > .gitignore",
        "mkdir ignored && echo x > ignored/x && echo y > trace.log",
        // Tracked files stay tracked whatever .gitignore says.
        "printf '*.md\\n' > docs/.gitignore && echo changed > docs/a.md",
        "mkdir -p sub/.git && echo '[core]' > sub/.git/config",
        "mkdir empty",
      ].join(" && "),
    );
    const newline = "new\nline.txt";
    expect((await session.uncommitted()).app).toContain(newline);
    const changes = await session.changes({ maxFileBytes: 4096 });
    const repo = changes.repos[0]!;
    expect(summary(repo.paths)).toEqual([
      [".gitignore", "added", "100644:ignored/\n*.log\n"],
      ["README.md", "deleted", "-"],
      ["docs/.gitignore", "added", "100644:*.md\n"],
      ["docs/a.md", "modified", "100644:changed\n"],
      [newline, "added", "100644:two\nlines"],
      ['q"uote\\back.txt', "added", "100644:q\n"],
      ["run.sh", "modified", "100755:echo run\n"],
      ["to-index", "added", "link:src/index.ts"],
      ["ünïcödé 名前.md", "added", "100644:hi\n"],
    ]);
    expect(repo.skipped).toEqual([
      { path: "big.bin", reason: "is 5000 bytes, over the 4096-byte limit of a change set" },
      { path: "pipe", reason: "is a named pipe: only files and links are read" },
    ]);
    expect(repo.paths.find((change) => change.path === "run.sh")?.base).toEqual({
      mode: "100644",
      oid: git(source, ["rev-parse", "HEAD:run.sh"]),
    });
    // Fetched back, the source holds exactly those bytes under exactly those names.
    const [fetched] = await session.fetchCode({ strict: true });
    const tree = treeOf(source, fetched!.commit!);
    expect([...tree.keys()].sort()).toEqual(
      [
        ".gitignore",
        "big.bin",
        "docs/.gitignore",
        "docs/a.md",
        newline,
        'q"uote\\back.txt',
        "run.sh",
        "src/index.ts",
        "to-index",
        "ünïcödé 名前.md",
      ].sort(),
    );
    expect(git(source, ["cat-file", "blob", tree.get(newline)!.oid])).toBe("two\nlines");
    expect(tree.get("run.sh")?.mode).toBe("100755");
    expect(tree.get("to-index")?.mode).toBe("120000");
    expect(tree.get("ünïcödé 名前.md")?.oid).toBe(repo.paths.find((change) => change.path === "ünïcödé 名前.md")?.entry?.oid);
    expect((await session.fetchCode())[0]!.commit).toBe(fetched!.commit);
    expect(fsck()).toBe("");
  });

  it("shares the source's objects read-only: a chmod and a write from inside cannot change them", async () => {
    // As on a host where the container's user owns the source repository (a non-root host).
    const objects = join(source, ".git", "objects");
    const [uid, gid] = session.state.user.split(":").map(Number);
    const chownTree = (path: string) => {
      chownSync(path, uid!, gid!);
      if (statSync(path).isDirectory()) for (const name of readdirSync(path)) chownTree(join(path, name));
    };
    chownTree(objects);
    const files = (path: string): string[] =>
      statSync(path).isDirectory() ? readdirSync(path).flatMap((name) => files(join(path, name))) : [path];
    const before = new Map(files(objects).map((file) => [file, readFileSync(file, "hex")]));
    const result = await session.exec([
      "/bin/sh",
      "-c",
      // Every object file the clone can reach: its own and those of its alternates.
      `cd /workspace/app/.git/objects; for d in . $(cat info/alternates 2>/dev/null); do find "$d" -type f | while read f; do chmod u+w "$f" 2>/dev/null; echo garbage >> "$f" 2>/dev/null && echo "wrote $f"; done; done; true`,
    ]);
    expect(result.stdout).not.toContain(objects);
    expect(new Map(files(objects).map((file) => [file, readFileSync(file, "hex")]))).toEqual(before);
    expect(fsck()).toBe("");
    expect(readlinkSafe(join(clone(), ".git"))).toBeUndefined();
    expect(existsSync(join(clone(), ".git", "objects", "info", "alternates"))).toBe(true);
  });
});

function readlinkSafe(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

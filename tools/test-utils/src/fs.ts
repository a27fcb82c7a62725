import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/** A temporary directory removed by `await using` or `remove()`. */
export interface TempDir extends AsyncDisposable {
  path: string;
  /** Writes files given as relative path → content, creating directories. */
  write(files: Record<string, string | Uint8Array>): void;
  remove(): void;
}

export function createTempDir(prefix = "bulkhead-test-"): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  const remove = () => rmSync(path, { recursive: true, force: true });
  return {
    path,
    write(files) {
      for (const [name, content] of Object.entries(files)) {
        mkdirSync(dirname(join(path, name)), { recursive: true });
        writeFileSync(join(path, name), content);
      }
    },
    remove,
    [Symbol.asyncDispose]: async () => remove(),
  };
}

/** Runs the real git CLI in `cwd` and returns its trimmed stdout. */
export function git(cwd: string, args: readonly string[]): string {
  return execFileSync("git", args, {
    cwd,
    encoding: "utf8",
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "Test",
      GIT_AUTHOR_EMAIL: "test@example.com",
      GIT_COMMITTER_NAME: "Test",
      GIT_COMMITTER_EMAIL: "test@example.com",
    },
  }).trim();
}

/**
 * Runs git in a session's workspace, as a person on the host would: the clone belongs to the
 * container's user, so git's ownership check is waived, and commits are made as "Agent".
 */
export function gitInWorkspace(cwd: string, args: readonly string[]): string {
  return execFileSync("git", ["-c", "safe.directory=*", "-c", "user.name=Agent", "-c", "user.email=agent@example.com", ...args], {
    cwd,
    encoding: "utf8",
  }).trim();
}

/** `git init` with a first commit of the given files. */
export function initRepo(path: string, files: Record<string, string> = { "README.md": "# repo\n" }): void {
  mkdirSync(path, { recursive: true });
  git(path, ["init", "--quiet", "--initial-branch=main"]);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(path, name)), { recursive: true });
    writeFileSync(join(path, name), content);
  }
  git(path, ["add", "--all"]);
  git(path, ["commit", "--quiet", "--message", "initial"]);
}

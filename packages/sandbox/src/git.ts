import { execFile } from "node:child_process";

/**
 * Runs git in a repository the host trusts: a user's source repository, or a clone the host
 * made in a directory the agent cannot reach (yet). Never in a session's workspace once its
 * container runs: the agent's config, hooks and attributes would decide what git runs there.
 * `safe.directory=*`: the source may belong to another user than the one running bulkhead.
 */
export function git(cwd: string, args: readonly string[], { as }: { as?: { uid: number; gid: number } } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      "git",
      ["-c", "safe.directory=*", ...args],
      // `as`: the process runs as that user (root only), so what it writes is that user's.
      { cwd, maxBuffer: 64 * 1024 * 1024, encoding: "utf8", ...(as ? { uid: as.uid, gid: as.gid } : {}) },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`git ${args.join(" ")} in ${cwd}: ${stderr.trim() || error.message}`));
        else resolve(stdout.trim());
      },
    );
  });
}

/** The absolute git directory shared by a trusted repo's worktrees (where its objects are). */
export function gitCommonDir(repo: string): Promise<string> {
  return git(repo, ["rev-parse", "--path-format=absolute", "--git-common-dir"]);
}

export function run(command: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { encoding: "utf8" }, (error, stdout, stderr) =>
      error ? reject(new Error(`${command} ${args.join(" ")}: ${stderr.trim() || error.message}`)) : resolve(stdout.trim()),
    );
  });
}

import { execFile } from "node:child_process";

/** Runs git with `safe.directory=*` (session workspaces may belong to the container's user). */
export function git(cwd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      "git",
      ["-c", "safe.directory=*", ...args],
      { cwd, maxBuffer: 64 * 1024 * 1024, encoding: "utf8" },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`git ${args.join(" ")} in ${cwd}: ${stderr.trim() || error.message}`));
        else resolve(stdout.trim());
      },
    );
  });
}

/** What a repo's own config could make git run on the host: never, for a workspace repo. */
const NO_HOST_COMMANDS = ["-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null"];

/**
 * Runs git on the host in a repo the container can write (a session's clone). Its `.git/config`
 * and `.gitattributes` are the agent's to change, and git would run what they name: an
 * fsmonitor, hooks, clean and smudge filters. Those are switched off for this call, filters by
 * the names the repo's config (with its includes) defines. A command that may run a filter (a
 * checkout) must run while the container is paused, so the config cannot change between reading
 * it and using it; prefer plumbing that never reads content.
 */
export async function workspaceGit(cwd: string, args: readonly string[]): Promise<string> {
  const filters = await git(cwd, [...NO_HOST_COMMANDS, "config", "--includes", "--get-regexp", "^filter\\."]).catch(() => "");
  const names = new Set(
    filters
      .split("\n")
      .map((line) => /^filter\.(.+)\.[^.\s]+(\s|$)/.exec(line)?.[1])
      .filter((name): name is string => name !== undefined),
  );
  const off = [...names].flatMap((name) =>
    ["clean", "smudge", "process"].flatMap((key) => ["-c", `filter.${name}.${key}=`]).concat(["-c", `filter.${name}.required=false`]),
  );
  return git(cwd, [...NO_HOST_COMMANDS, ...off, ...args]);
}

export function run(command: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { encoding: "utf8" }, (error, stdout, stderr) =>
      error ? reject(new Error(`${command} ${args.join(" ")}: ${stderr.trim() || error.message}`)) : resolve(stdout.trim()),
    );
  });
}

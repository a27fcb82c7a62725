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

export function run(command: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { encoding: "utf8" }, (error, stdout, stderr) =>
      error ? reject(new Error(`${command} ${args.join(" ")}: ${stderr.trim() || error.message}`)) : resolve(stdout.trim()),
    );
  });
}

// The code of an earlier commit, built into a temporary directory, so a bench can measure it side
// by side with this tree in the same run. `git archive` (not `git worktree add`) leaves nothing
// in the repository's own metadata; dispose() removes the directory.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dirname, "..", "..");

/** An earlier commit's packages, built (`dist/index.js` each). */
export interface OldCode {
  commit: string;
  dir: string;
  /** Imports `packages/<name>/dist/index.js`. */
  load<TModule>(name: string): Promise<TModule>;
  /** Removes the directory. */
  dispose(): void;
}

/**
 * Builds `packages` (core first) of `commit` with tsup, no declarations. Each package resolves
 * `@bulkhead/core` to that commit's core; every other dependency comes from this tree's
 * node_modules. Throws when the commit no longer builds, with tsup's output.
 */
export function buildOldCode(commit: string, packages: readonly string[]): OldCode {
  const dir = fs.mkdtempSync(join(tmpdir(), `bulkhead-bench-${commit}-`));
  const dispose = () => fs.rmSync(dir, { recursive: true, force: true });
  try {
    execFileSync("sh", ["-c", `git archive --format=tar ${commit} | tar -x -C "$1"`, "sh", dir], {
      cwd: root,
      stdio: ["ignore", "ignore", "pipe"],
    });
    fs.symlinkSync(join(root, "node_modules"), join(dir, "node_modules"));
    for (const name of ["core", ...packages.filter((name) => name !== "core")]) {
      const packageDir = join(dir, "packages", name);
      execFileSync("npx", ["tsup", "--no-dts"], { cwd: packageDir, stdio: ["ignore", "pipe", "pipe"] });
      if (name === "core") continue;
      fs.mkdirSync(join(packageDir, "node_modules", "@bulkhead"), { recursive: true });
      fs.symlinkSync(join(dir, "packages", "core"), join(packageDir, "node_modules", "@bulkhead", "core"));
    }
  } catch (error) {
    dispose();
    throw error;
  }
  return {
    commit,
    dir,
    load: async <TModule>(name: string) => (await import(join(dir, "packages", name, "dist", "index.js"))) as TModule,
    dispose,
  };
}

/** Says why the old code could not be built or loaded: the bench then compares against its shell baseline only. */
export function oldCodeFailed(commit: string, error: unknown): string {
  const problem = `the code at ${commit} no longer builds or loads (${(error as Error).message.split("\n")[0]}): compared against the shell script only`;
  console.log(problem);
  return problem;
}

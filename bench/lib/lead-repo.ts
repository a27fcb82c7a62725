// The generated repository several benches share (bench/git-lead makes the same one): `files`
// one-line TypeScript files, 100 per directory, in one commit. Made once under bench/.data and
// reused, so every bench reads the same tree.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { join } from "node:path";

const data = join(import.meta.dirname, "..", ".data");

/** The environment the benches run git in: a fixed author and committer. */
export const BENCH_GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: "Bench",
  GIT_AUTHOR_EMAIL: "bench@example.com",
  GIT_COMMITTER_NAME: "Bench",
  GIT_COMMITTER_EMAIL: "bench@example.com",
};

/** The path of the generated `files`-file repository (`bench/.data/lead-<files>`), made when it is missing. */
export function leadRepository(files: number): string {
  const template = join(data, `lead-${files}`);
  if (fs.existsSync(join(template, ".done"))) return template;
  fs.rmSync(template, { recursive: true, force: true });
  for (let index = 0; index < files; index++) {
    const dir = join(template, "src", `pkg${Math.floor(index / 100)}`);
    if (index % 100 === 0) fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(join(dir, `file${index}.ts`), `export const value${index} = ${index};\n`);
  }
  // No background `gc --auto` after the big commit: it would pack objects while copies are made.
  for (const args of [
    ["init", "--quiet", "--initial-branch=main"],
    ["config", "gc.auto", "0"],
    ["add", "--all"],
    ["commit", "--quiet", "-m", "initial"],
  ])
    execFileSync("git", args, { cwd: template, env: BENCH_GIT_ENV, stdio: "ignore" });
  fs.writeFileSync(join(template, ".git", "info", "exclude"), ".done\n");
  fs.writeFileSync(join(template, ".done"), "");
  return template;
}

/** A copy of `template` at `bench/.data/<name>`, made when it is missing (benches reuse it). */
export function copyOf(template: string, name: string): string {
  const path = join(data, name);
  if (!fs.existsSync(join(path, ".done"))) {
    fs.rmSync(path, { recursive: true, force: true });
    fs.cpSync(template, path, { recursive: true });
  }
  return path;
}

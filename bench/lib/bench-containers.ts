// What a Docker bench leaves, found by label and removed in an untimed step: its own shell
// containers (labelled with the run's id) and its sessions' containers (labelled with their
// state directory's hash). Nothing else on the shared engine is touched.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, rmSync } from "node:fs";
import { resolve } from "node:path";

/** The label a bench puts on the containers it runs itself (`docker run --label`). */
export const BENCH_RUN_LABEL = "dev.bulkhead.bench.run";

/**
 * The label value sessions of `home` carry (`dev.bulkhead.home`): the sandbox's internal
 * `homeLabel`, the same formula in every commit the benches compare against.
 */
export function sessionHomeLabel(home: string): string {
  return `dev.bulkhead.home=${createHash("sha256").update(resolve(home)).digest("hex").slice(0, 16)}`;
}

/** The ids of the containers (running or not) carrying `label` (`key=value`). */
export function containersLabelled(label: string): string[] {
  const listed = execFileSync("docker", ["ps", "--all", "--quiet", "--filter", `label=${label}`], { encoding: "utf8" });
  return listed.split("\n").filter((id) => id !== "");
}

/** Removes (force) the containers carrying `label`; returns how many there were. */
export function removeContainersLabelled(label: string): number {
  const ids = containersLabelled(label);
  if (ids.length > 0) execFileSync("docker", ["rm", "--force", "--volumes", ...ids], { stdio: "ignore" });
  return ids.length;
}

/**
 * The end of a Docker bench, untimed: removes its sessions' containers (of `home`) and its own
 * (`runLabel`), its scratch directory and the old code it built, then prints what is left.
 */
export function sweepBench({
  home,
  runLabel,
  scratch,
  oldCode,
}: {
  home: string;
  runLabel: string;
  scratch: string;
  oldCode: { dir: string; dispose(): void } | undefined;
}): void {
  const swept = removeContainersLabelled(sessionHomeLabel(home)) + removeContainersLabelled(runLabel);
  rmSync(scratch, { recursive: true, force: true });
  oldCode?.dispose();
  const left = containersLabelled(sessionHomeLabel(home)).length + containersLabelled(runLabel).length;
  const leftDirs = existsSync(scratch) || (oldCode !== undefined && existsSync(oldCode.dir));
  console.log(
    `\ncleanup: ${swept} container(s) swept after the runs; left behind: ${left} container(s), temp dirs ${leftDirs ? "LEFT" : "none"}`,
  );
}

// bench/work-hook: drains a file work hook of BENCH_HOOK_TASKS tasks (default 5,000) with 1, 2
// and 8 processes calling claimNext, beside the floor: 1, 2 and 8 processes doing the same claims
// with one atomic mkdir per attempt and no hook at all (the baseline is the 8-process floor).
// Processes load first and start together on a signal, so the figures are claim throughput, not
// Node start-up. Every task must be claimed exactly once; the bench fails loudly otherwise. Run
// with `npm run bench -- work-hook`.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createWorkHook } from "@bulkhead/git-lead";
import { begin, measure, report, type Sample } from "./lib/bench-helper.js";

const TASKS = Number(process.env.BENCH_HOOK_TASKS ?? 5_000);
const worker = join(import.meta.dirname, "lib", "hook-drain-worker.mjs");
const ids = Array.from({ length: TASKS }, (_, index) => `t${String(index).padStart(5, "0")}`);
const root = mkdtempSync(join(tmpdir(), "bench-hook-"));
let round = 0;

/** Starts `count` workers and waits until all have loaded; the returned `go` starts them together. */
async function load(mode: "hook" | "floor", dir: string, count: number): Promise<() => Promise<string[][]>> {
  const children = Array.from({ length: count }, (_, index) =>
    spawn(process.execPath, [worker, mode, dir, mode === "hook" ? `w${index}` : String(TASKS)], { stdio: ["pipe", "pipe", "inherit"] }),
  );
  const outputs = children.map((child) => {
    let text = "";
    const loaded = new Promise<void>((resolve) =>
      child.stdout.on("data", (chunk: Buffer) => {
        text += chunk.toString();
        if (text.startsWith("ready\n")) resolve();
      }),
    );
    const done = new Promise<string[]>((resolve, reject) =>
      child.on("exit", (code) =>
        code === 0 ? resolve(JSON.parse(text.slice(6)) as string[]) : reject(new Error(`worker exited ${code}`)),
      ),
    );
    return { loaded, done };
  });
  await Promise.all(outputs.map((output) => output.loaded));
  return () => {
    for (const child of children) child.stdin.write("go\n");
    return Promise.all(outputs.map((output) => output.done));
  };
}

const prepared = new Map<string, () => Promise<string[][]>>();
function exactlyOnce(label: string, won: string[][]): void {
  const all = won.flat().sort();
  if (all.length !== TASKS || all.some((id, index) => id !== ids[index]))
    throw new Error(`${label}: tasks were not each claimed exactly once`);
}

const cases = [
  ...[1, 2, 8].map((processes) => ({
    label: `file hook, claimNext, ${processes} process${processes > 1 ? "es" : ""}`,
    mode: "hook" as const,
    processes,
  })),
  // The floor at 1 and 2 processes too: how far the file system itself lets claims grow with
  // processes on this machine (a claim is a create in one shared directory).
  ...[1, 2, 8].map((processes) => ({
    label: `floor: atomic mkdir per claim, ${processes} process${processes > 1 ? "es" : ""}`,
    mode: "floor" as const,
    processes,
  })),
];

process.on("exit", () => rmSync(root, { recursive: true, force: true }));
const mark = begin(`bench/work-hook: draining ${TASKS.toLocaleString("en-US")} tasks`);
const samples: Sample[] = await measure(
  cases.map((entry) => ({
    label: entry.label,
    before: async () => {
      const dir = join(root, `r${round++}`);
      if (entry.mode === "hook") await createWorkHook({ dir }).add(ids.map((id) => ({ id })));
      else mkdirSync(join(dir, "claims"), { recursive: true });
      prepared.set(entry.label, await load(entry.mode, dir, entry.processes));
    },
    run: async () => exactlyOnce(entry.label, await prepared.get(entry.label)!()),
  })),
);
report(mark, samples, {
  baseline: "floor: atomic mkdir per claim, 8 processes",
  extra: { "claims/s": (sample) => Math.round(TASKS / (sample.median / 1000)).toLocaleString("en-US") },
  notes: ["every run: each task claimed exactly once (checked)"],
});

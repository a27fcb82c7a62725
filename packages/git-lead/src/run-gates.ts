import { spawn } from "node:child_process";
import { createDeadline } from "@bulkhead/core";
import type { FunctionGate, GateResult, JournaledGate } from "./submission.js";

const DEFAULT_GATE_TIMEOUT_MS = 300_000;
const EVIDENCE_CHARS = 4096;

type Outcome = { ok: boolean; output: string; aborted?: true };

/** Kills a gate's whole process group; one already gone is fine. */
function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // ESRCH: the group has no process left.
  }
}

/**
 * Runs a command gate in its own process group, so a stop (its time limit or the caller's abort)
 * kills what it started too, not only the program itself; what it left running in the background
 * when it exited is killed as well, so a gate never outlives its verdict.
 */
function runCommand(command: readonly string[], cwd: string, signal: AbortSignal, timedOut: () => boolean): Promise<Outcome> {
  return new Promise((resolve) => {
    let output = "";
    const keep = (chunk: Buffer) => {
      output = `${output}${chunk.toString("utf8")}`.slice(-EVIDENCE_CHARS);
    };
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(command[0]!, command.slice(1), { cwd, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    } catch (error) {
      return resolve({ ok: false, output: `gate could not start: ${(error as Error).message}` });
    }
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    const stop = () => killGroup(child.pid);
    signal.addEventListener("abort", stop, { once: true });
    let settled = false;
    const finish = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", stop);
      killGroup(child.pid);
      resolve(outcome);
    };
    child.on("error", (error) =>
      finish({ ok: false, output: `${output}\n[gate could not start: ${error.message}]`.slice(-EVIDENCE_CHARS) }),
    );
    // `exit`, not `close`: a background process holding the pipes open must not keep the gate waiting.
    child.on("exit", (code, killedBy) => {
      if (code === 0 && !signal.aborted) return finish({ ok: true, output });
      if (signal.aborted && !timedOut()) return finish({ ok: false, output: `${output}\n[aborted]`.slice(-EVIDENCE_CHARS), aborted: true });
      const reason = signal.aborted
        ? String((signal.reason as Error)?.message ?? "timed out")
        : killedBy
          ? `killed by ${killedBy}`
          : `exit ${code}`;
      finish({ ok: false, output: `${output}\n[${reason}]`.slice(-EVIDENCE_CHARS) });
    });
  });
}

/** Runs a function gate until it answers or the deadline fires; the deadline's timer is the caller's to clear. */
async function runFunction(gate: FunctionGate, context: Parameters<FunctionGate["run"]>[0], timedOut: () => boolean): Promise<Outcome> {
  const { abortSignal: signal } = context;
  if (signal.aborted) return stopped(signal, timedOut);
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      Promise.resolve(gate.run(context)).then((value) => ({
        ok: value?.ok === true,
        output: String(value?.output ?? "").slice(-EVIDENCE_CHARS),
      })),
      new Promise<Outcome>((resolve) => {
        onAbort = () => resolve(stopped(signal, timedOut));
        signal.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
  } finally {
    if (onAbort) signal.removeEventListener("abort", onAbort);
  }
}

function stopped(signal: AbortSignal, timedOut: () => boolean): Outcome {
  return timedOut()
    ? { ok: false, output: String((signal.reason as Error)?.message ?? "timed out") }
    : { ok: false, output: "aborted", aborted: true };
}

/**
 * Runs a submission's journaled gates in order, in `dir`, and stops at the first that fails.
 * A function gate is looked up in `functions` (this lead's own); one that is not there fails
 * closed, as does a gate that throws or times out. Each gate's time limit and the caller's
 * `abortSignal` are merged by core's `createDeadline`, whose timer is cleared when the gate ends.
 * An abort kills the running gate (its process group) and ends the run with `aborted: true`.
 */
export async function runGates(
  gates: readonly JournaledGate[],
  {
    dir,
    files,
    issueId,
    functions,
    onGateEnd,
    abortSignal,
  }: {
    dir: string;
    files: readonly string[];
    issueId: string;
    functions: ReadonlyMap<string, FunctionGate>;
    onGateEnd: (result: GateResult) => void;
    abortSignal?: AbortSignal | undefined;
  },
): Promise<{ ok: boolean; aborted?: true; results: GateResult[] }> {
  const results: GateResult[] = [];
  for (const gate of gates) {
    if (abortSignal?.aborted) return { ok: false, aborted: true, results };
    const started = Date.now();
    const timeoutMs = gate.timeoutMs ?? DEFAULT_GATE_TIMEOUT_MS;
    const deadline = createDeadline({ abortSignal, timeoutMs });
    const timedOut = () => deadline.timedOut;
    let outcome: Outcome;
    try {
      if ("command" in gate) outcome = await runCommand(gate.command, dir, deadline.signal, timedOut);
      else {
        const run = functions.get(gate.name);
        outcome = run
          ? await runFunction(run, { dir, files, issueId, abortSignal: deadline.signal }, timedOut)
          : { ok: false, output: `function gate ${gate.name} is not defined in the lead that processed this submission` };
      }
    } catch (error) {
      outcome = { ok: false, output: `gate threw: ${(error as Error).message}` };
    } finally {
      deadline.dispose();
    }
    const { aborted, ...verdict } = outcome;
    const result = { name: gate.name, ...verdict, durationMs: Date.now() - started };
    results.push(result);
    onGateEnd(result);
    if (aborted) return { ok: false, aborted: true, results };
    if (!result.ok) return { ok: false, results };
  }
  return { ok: true, results };
}

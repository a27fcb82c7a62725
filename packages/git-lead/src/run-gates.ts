import { execFile } from "node:child_process";
import type { FunctionGate, GateResult, JournaledGate } from "./submission.js";

const DEFAULT_GATE_TIMEOUT_MS = 300_000;
const EVIDENCE_CHARS = 4096;

function runCommand(command: readonly string[], cwd: string, timeoutMs: number): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(
      command[0]!,
      command.slice(1),
      { cwd, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, encoding: "utf8" },
      (error, stdout, stderr) => {
        const output = `${stdout}${stderr}`.slice(-EVIDENCE_CHARS);
        if (!error) return resolve({ ok: true, output });
        const reason = (error as { killed?: boolean }).killed
          ? `timed out after ${timeoutMs} ms`
          : `exit ${(error as { code?: unknown }).code}`;
        resolve({ ok: false, output: `${output}\n[${reason}]`.slice(-EVIDENCE_CHARS) });
      },
    );
  });
}

/** Runs a function gate with a timeout whose timer is always cleared, so it never keeps the process alive. */
async function runFunction(
  gate: FunctionGate,
  context: Parameters<FunctionGate["run"]>[0],
  timeoutMs: number,
): Promise<{ ok: boolean; output: string }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      Promise.resolve(gate.run(context)).then((value) => ({
        ok: value?.ok === true,
        output: String(value?.output ?? "").slice(-EVIDENCE_CHARS),
      })),
      new Promise<{ ok: boolean; output: string }>((resolve) => {
        timer = setTimeout(() => resolve({ ok: false, output: `timed out after ${timeoutMs} ms` }), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs a submission's journaled gates in order, in `dir`, and stops at the first that fails.
 * A function gate is looked up in `functions` (this lead's own); one that is not there fails
 * closed, as does a gate that throws or times out.
 */
export async function runGates(
  gates: readonly JournaledGate[],
  {
    dir,
    files,
    issueId,
    functions,
    onGateEnd,
  }: {
    dir: string;
    files: readonly string[];
    issueId: string;
    functions: ReadonlyMap<string, FunctionGate>;
    onGateEnd: (result: GateResult) => void;
  },
): Promise<{ ok: boolean; results: GateResult[] }> {
  const results: GateResult[] = [];
  for (const gate of gates) {
    const started = Date.now();
    const timeoutMs = gate.timeoutMs ?? DEFAULT_GATE_TIMEOUT_MS;
    let outcome: { ok: boolean; output: string };
    try {
      if ("command" in gate) outcome = await runCommand(gate.command, dir, timeoutMs);
      else {
        const run = functions.get(gate.name);
        outcome = run
          ? await runFunction(run, { dir, files, issueId }, timeoutMs)
          : { ok: false, output: `function gate ${gate.name} is not defined in the lead that processed this submission` };
      }
    } catch (error) {
      outcome = { ok: false, output: `gate threw: ${(error as Error).message}` };
    }
    const result = { name: gate.name, ...outcome, durationMs: Date.now() - started };
    results.push(result);
    onGateEnd(result);
    if (!result.ok) return { ok: false, results };
  }
  return { ok: true, results };
}

import { spawn } from "node:child_process";
import { BulkheadError, InvalidArgumentError } from "@bulkhead/core";

/** What the project's own check said about the partial state. */
export interface SpawnCheck {
  /** True when the check exited 0: the partial state is sound. */
  ok: boolean;
  exitCode: number | null;
  timedOut: boolean;
  /** The last 4 KB of combined output, as evidence. */
  output: string;
  durationMs: number;
}

/**
 * Runs the project's own check (e.g. `["npx", "tsc", "--noEmit"]`) before a continuation agent
 * starts (seed 003: "check before spawning"), and says whether the partial state is sound.
 * The command is an argument list, not a shell string.
 *
 * @example
 * const check = await checkBeforeSpawn({ command: ["npx", "tsc", "--noEmit"], cwd: "backend-api" });
 * if (!check.ok) console.log(check.output);
 */
export function checkBeforeSpawn({
  command,
  cwd,
  timeoutMs = 300_000,
  abortSignal,
}: {
  command: readonly string[];
  cwd: string;
  timeoutMs?: number;
  abortSignal?: AbortSignal;
}): Promise<SpawnCheck> {
  if (!Array.isArray(command) || command.length === 0 || command.some((part) => typeof part !== "string")) {
    throw new InvalidArgumentError("command", 'expected the check as an argument list, e.g. ["npx", "tsc", "--noEmit"]');
  }
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const signal = abortSignal ? AbortSignal.any([abortSignal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs);
    const child = spawn(command[0]!, command.slice(1), { cwd, signal, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString("utf8")).slice(-4096);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.on("error", (error: NodeJS.ErrnoException) => {
      if (error.name === "AbortError") return;
      reject(
        new BulkheadError("COMMAND_FAILED", `check ${command.join(" ")} could not start in ${cwd}: ${error.code ?? error.message}`, {
          cause: error,
        }),
      );
    });
    child.on("close", (exitCode) => {
      const timedOut = signal.aborted && !abortSignal?.aborted;
      resolve({ ok: exitCode === 0 && !signal.aborted, exitCode, timedOut, output, durationMs: Date.now() - started });
    });
  });
}

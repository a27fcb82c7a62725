import { spawn } from "node:child_process";
import { AbortedError, BulkheadError, createDeadline, lazySchema, validateOptions } from "@bulkhead/core";
import { z } from "zod";

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

/** The options of {@link checkBeforeSpawn}. */
export interface CheckBeforeSpawnOptions {
  /** The check as an argument list, not a shell string: `["npx", "tsc", "--noEmit"]`. */
  command: readonly string[];
  /** Where the check runs (the repository's working tree). */
  cwd: string;
  /**
   * How long the check may run; past it the check is killed and reported with `timedOut: true`.
   * @default 300_000
   */
  timeoutMs?: number;
  /**
   * Cancels the check: it is killed and the call throws `AbortedError`.
   * @default undefined
   */
  abortSignal?: AbortSignal;
}

const optionsSchema = lazySchema(() =>
  z.object({
    command: z
      .array(z.string(), { error: 'expected the check as an argument list, e.g. ["npx", "tsc", "--noEmit"]' })
      .min(1, 'expected the check as an argument list, e.g. ["npx", "tsc", "--noEmit"]'),
    cwd: z.string().min(1, "expected the directory the check runs in"),
    timeoutMs: z.number().int().positive().optional(),
    abortSignal: z.instanceof(AbortSignal).optional(),
  }),
);

/**
 * Runs the project's own check (e.g. `["npx", "tsc", "--noEmit"]`) before a continuation agent
 * starts (seed 003: "check before spawning"), and says whether the partial state is sound.
 * The command is an argument list, not a shell string. A time limit is reported
 * (`timedOut: true`); an abort through `abortSignal` kills the check and throws `AbortedError`.
 *
 * @example
 * const check = await checkBeforeSpawn({ command: ["npx", "tsc", "--noEmit"], cwd: "backend-api" });
 * if (!check.ok) console.log(check.output);
 */
export function checkBeforeSpawn(options: CheckBeforeSpawnOptions): Promise<SpawnCheck> {
  const { command, cwd, timeoutMs = 300_000, abortSignal } = validateOptions(optionsSchema(), options, "options");
  if (abortSignal?.aborted) return Promise.reject(new AbortedError("checkBeforeSpawn", abortSignal.reason));
  const started = Date.now();
  // One signal for the caller's abort and the time limit; disposed when the check ends, so its
  // timer never outlives the check.
  const deadline = createDeadline({ abortSignal, timeoutMs });
  return new Promise<SpawnCheck>((resolve, reject) => {
    const child = spawn(command[0]!, command.slice(1), { cwd, signal: deadline.signal, stdio: ["ignore", "pipe", "pipe"] });
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
      // A time limit is a result (the check did not pass in time); the caller's abort is an abort.
      if (deadline.signal.aborted && !deadline.timedOut) return reject(new AbortedError("checkBeforeSpawn", deadline.signal.reason));
      const timedOut = deadline.timedOut;
      resolve({ ok: exitCode === 0 && !timedOut, exitCode, timedOut, output, durationMs: Date.now() - started });
    });
  }).finally(() => deadline.dispose());
}

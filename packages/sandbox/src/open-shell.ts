import { randomBytes } from "node:crypto";
import { AbortedError, createDeadline, sleep, throwIfAborted, validateOptions } from "@bulkhead/core";
import { z } from "zod";
import { SessionError, sessionFault } from "./sandbox-errors.js";
import type { Session } from "./session.js";

/** Where a shell reads and writes: a terminal (`process.stdin` / `process.stdout`) or any streams. */
export interface ShellStreams {
  /** Keys in. @default process.stdin */
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  /** The screen. @default process.stdout */
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number; on(event: "resize", listener: () => void): unknown };
}

/** Options of {@link openShell}. */
export interface OpenShellOptions extends Partial<ShellStreams> {
  /** What runs in the terminal. @default ["/bin/sh"] */
  readonly command?: readonly string[];
  /**
   * Ends the shell from the host: the shell and every process of its terminal session are killed
   * in the container, and `openShell` throws `AbortedError` (cause: the signal's reason).
   * @default no signal (a person ends it: exit, or closing the terminal)
   */
  readonly abortSignal?: AbortSignal;
}

const openShellOptionsSchema = () =>
  z.strictObject({
    command: z.array(z.string(), "expected an argument list of strings").min(1, "expected an argument list of strings").optional(),
    stdin: z
      .custom<ShellStreams["stdin"]>(
        (value) => typeof (value as { pipe?: unknown } | null)?.pipe === "function",
        "expected a readable stream",
      )
      .optional(),
    stdout: z
      .custom<ShellStreams["stdout"]>(
        (value) => typeof (value as { write?: unknown } | null)?.write === "function",
        "expected a writable stream",
      )
      .optional(),
    abortSignal: z.instanceof(AbortSignal).optional(),
  });

/**
 * Runs the command in place of a shell that first writes its pid to the file `$0`. A TTY exec is
 * the leader of its own terminal session, and the pid is that session's id: an abort kills the
 * whole session (background jobs too), not only the shell's process group.
 */
const SESSION_LEADER = 'echo $$ > "$0"; exec "$@"';

/**
 * Kills every process of the terminal session whose id the file `$1` holds, with shell builtins
 * only (`read`, `kill`, a glob over /proc): each /proc/<pid>/stat is read after its `(comm)`, where
 * the fourth field is the session id. Zombies are left to their reaper. Prints `gone` when none
 * was left, `done` when some were signalled (the caller asks again until `gone`).
 */
const KILL_SESSION =
  'read -r sid < "$1" 2>/dev/null || { echo gone; exit 0; }; case "$sid" in ""|1|*[!0-9]*) echo gone; exit 0;; esac; ' +
  'left=0; for stat in /proc/[0-9]*/stat; do read -r line < "$stat" 2>/dev/null || continue; set -- ${line##*) }; ' +
  '[ "$4" = "$sid" ] && [ "$1" != Z ] || continue; pid=${stat#/proc/}; pid=${pid%/stat}; kill -s KILL "$pid" 2>/dev/null && left=1; done; ' +
  'if [ $left = 1 ]; then echo done; else rm -f "$1"; echo gone; fi';

/**
 * Opens an interactive shell (a TTY exec) in a live session, as the session's user in its
 * working directory, for a person to step in: keys go to the box, the box's screen comes back.
 * A terminal on the host is put in raw mode while it runs and restored after. Resolves with the
 * shell's exit code when it ends. `command` is what runs (`@default ["/bin/sh"]`). A person ends
 * it (exit, or closing the terminal); `abortSignal` ends it from the host: the shell and every
 * process it started are killed in the container, then `AbortedError` is thrown.
 *
 * @example
 * const { exitCode } = await openShell(session); // what `bulkhead shell <session>` runs
 */
export async function openShell(session: Session, options: OpenShellOptions = {}): Promise<{ exitCode: number | null }> {
  const {
    command = ["/bin/sh"],
    stdin = process.stdin,
    stdout = process.stdout,
    abortSignal,
  } = validateOptions(openShellOptionsSchema(), options, "options");
  throwIfAborted(abortSignal, "openShell");
  const running = await session.backend.inspect(session.instance).then(
    (info) => info?.state === "running",
    () => false,
  );
  if (!running)
    throw new SessionError("shell", `session ${session.id} is not running: start it first (bulkhead session reconcile --start)`);
  throwIfAborted(abortSignal, "openShell");
  // Only a shell that may be aborted runs under the wrapper: without one, any image's command runs as given.
  const pidFile = abortSignal ? `/tmp/.bulkhead-shell-${randomBytes(6).toString("hex")}` : undefined;
  const terminal = await session.backend
    .openTerminal(session.instance, {
      command: pidFile ? ["/bin/sh", "-c", SESSION_LEADER, pidFile, ...command] : [...command],
      user: session.state.user,
      cwd: session.state.workdir,
      env: { TERM: process.env.TERM ?? "xterm" },
    })
    .catch((error: unknown) => {
      throw sessionFault(error, "shell", session.id, session.backend.faultOf(error));
    });
  const { stream } = terminal;
  using deadline = createDeadline({ abortSignal });
  let ended = false;
  let killed: Promise<void> | undefined;
  // Asked again until nothing of the terminal session is left and the terminal has ended: the
  // wrapper may not have written its pid yet when the abort comes, and a job may fork meanwhile.
  const killUntilEnded = async () => {
    for (;;) {
      const answer = await session.exec(["/bin/sh", "-c", KILL_SESSION, "kill", pidFile!]).then(
        (result) => result.stdout,
        () => "failed",
      );
      // "failed": the container cannot be asked (stopped): once the terminal has ended there is nothing to kill.
      if (ended && !answer.includes("done")) return;
      await sleep(50);
    }
  };
  const onAbort = () => {
    stdin.unpipe(stream);
    killed = killUntilEnded();
  };
  // Aborted while the terminal was opening: a listener added now would never fire.
  if (deadline.signal.aborted) onAbort();
  else deadline.signal.addEventListener("abort", onAbort, { once: true });
  const resize = async () => {
    if (stdout.columns && stdout.rows) await terminal.resize(stdout.columns, stdout.rows).catch(() => undefined);
  };
  const raw = stdin.isTTY === true && typeof stdin.setRawMode === "function";
  if (raw) stdin.setRawMode!(true);
  const onResize = () => void resize();
  stdout.on("resize", onResize);
  try {
    // The first size is set before any input reaches the shell, so its first command sees it.
    await resize();
    if (!deadline.signal.aborted) stdin.pipe(stream);
    stream.pipe(stdout, { end: false });
    await new Promise<void>((resolve, reject) => {
      stream.on("end", resolve);
      stream.on("close", resolve);
      stream.on("error", reject);
    });
  } finally {
    ended = true;
    deadline.signal.removeEventListener("abort", onAbort);
    stdin.unpipe(stream);
    // A terminal's stdin keeps the process alive once read from: let it go again.
    if (raw) stdin.setRawMode!(false);
    if ("pause" in stdin && typeof stdin.pause === "function") stdin.pause();
    (stdout as unknown as { off?: (event: string, listener: () => void) => void }).off?.("resize", onResize);
  }
  await killed;
  if (abortSignal?.aborted) throw new AbortedError("openShell", abortSignal.reason);
  // The shell ended by itself: its pid file goes too (an exec's argument, so no shell quoting).
  if (pidFile) await session.exec(["/bin/sh", "-c", 'rm -f "$0"', pidFile]).catch(() => undefined);
  return { exitCode: await terminal.exitCode() };
}

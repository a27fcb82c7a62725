import { InvalidArgumentError } from "@bulkhead/core";
import { SessionError, sessionFault } from "./sandbox-errors.js";
import type { Session } from "./session.js";

/** Where a shell reads and writes: a terminal (`process.stdin` / `process.stdout`) or any streams. */
export interface ShellStreams {
  /** Keys in. @default process.stdin */
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  /** The screen. @default process.stdout */
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number; on(event: "resize", listener: () => void): unknown };
}

/**
 * Opens an interactive shell (a TTY exec) in a live session, as the session's user in its
 * working directory, for a person to step in: keys go to the box, the box's screen comes back.
 * A terminal on the host is put in raw mode while it runs and restored after. Resolves with the
 * shell's exit code when it ends. `command` is what runs (`@default ["/bin/sh"]`). It takes no
 * `abortSignal`: a person ends it (exit, or closing the terminal).
 *
 * @example
 * const { exitCode } = await openShell(session); // what `bulkhead shell <session>` runs
 */
export async function openShell(
  session: Session,
  { command = ["/bin/sh"], stdin = process.stdin, stdout = process.stdout }: { command?: readonly string[] } & Partial<ShellStreams> = {},
): Promise<{ exitCode: number | null }> {
  if (!Array.isArray(command) || command.length === 0 || !command.every((part) => typeof part === "string"))
    throw new InvalidArgumentError("options.command", "expected an argument list of strings");
  const running = await session.backend.inspect(session.instance).then(
    (info) => info?.state === "running",
    () => false,
  );
  if (!running)
    throw new SessionError("shell", `session ${session.id} is not running: start it first (bulkhead session reconcile --start)`);
  const terminal = await session.backend
    .openTerminal(session.instance, {
      command: [...command],
      user: session.state.user,
      cwd: session.state.workdir,
      env: { TERM: process.env.TERM ?? "xterm" },
    })
    .catch((error: unknown) => {
      throw sessionFault(error, "shell", session.id, session.backend.faultOf(error));
    });
  const { stream } = terminal;
  const resize = async () => {
    if (stdout.columns && stdout.rows) await terminal.resize(stdout.columns, stdout.rows).catch(() => undefined);
  };
  const raw = stdin.isTTY === true && typeof stdin.setRawMode === "function";
  if (raw) stdin.setRawMode!(true);
  const onResize = () => void resize();
  stdout.on("resize", onResize);
  // The first size is set before any input reaches the shell, so its first command sees it.
  await resize();
  try {
    stdin.pipe(stream);
    stream.pipe(stdout, { end: false });
    await new Promise<void>((resolve, reject) => {
      stream.on("end", resolve);
      stream.on("close", resolve);
      stream.on("error", reject);
    });
  } finally {
    stdin.unpipe(stream);
    // A terminal's stdin keeps the process alive once read from: let it go again.
    if (raw) stdin.setRawMode!(false);
    if ("pause" in stdin && typeof stdin.pause === "function") stdin.pause();
    (stdout as unknown as { off?: (event: string, listener: () => void) => void }).off?.("resize", onResize);
  }
  return { exitCode: await terminal.exitCode() };
}

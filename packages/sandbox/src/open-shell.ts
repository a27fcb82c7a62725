import type { Duplex } from "node:stream";
import { InvalidArgumentError } from "@bulkhead/core";
import { SessionError } from "./sandbox-errors.js";
import type { Session } from "./session.js";

/** Where a shell reads and writes: a terminal (`process.stdin` / `process.stdout`) or any streams. */
export interface ShellStreams {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number; on(event: "resize", listener: () => void): unknown };
}

/**
 * Opens an interactive shell (a TTY exec) in a live session, as the session's user in its
 * working directory, for a person to step in: keys go to the box, the box's screen comes back.
 * A terminal on the host is put in raw mode while it runs and restored after. Resolves with the
 * shell's exit code when it ends.
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
  const running = await session.container.inspect().then(
    (info) => info.State.Running && !info.State.Paused,
    () => false,
  );
  if (!running)
    throw new SessionError("shell", `session ${session.id} is not running: start it first (bulkhead session reconcile --start)`);
  const exec = await session.container.exec({
    Cmd: [...command],
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: true,
    User: session.state.user,
    WorkingDir: session.state.workdir,
    Env: [`TERM=${process.env.TERM ?? "xterm"}`],
  });
  const stream = (await exec.start({ hijack: true, stdin: true, Tty: true })) as Duplex;
  const resize = async () => {
    if (stdout.columns && stdout.rows) await exec.resize({ w: stdout.columns, h: stdout.rows }).catch(() => undefined);
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
  const { ExitCode } = await exec.inspect();
  return { exitCode: ExitCode ?? null };
}

/** The flags `parseArgs` hands a command. */
export type Flags = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** What a command produced: an exit code (0 ok, 1 wrong usage or failed, 2 refused by a limit, a guard or a person), data for --json, lines for people. */
export interface Outcome {
  code: 0 | 1 | 2;
  data: unknown;
  text: string[];
}

/** What a command may do while it runs: report a step, or stream output (`inject --follow`). */
export interface Io {
  progress(line: string): void;
  /** Output that belongs on stdout as it arrives; swallowed with `--json`. */
  stream(chunk: string): void;
}

/** One verb of the command line. Its module is loaded only when it runs, so `--help` starts fast. */
export interface Command {
  usage: string;
  example: string;
  run(positionals: string[], flags: Flags, io: Io): Promise<Outcome>;
}

export const ok = (data: unknown, text: string[]): Outcome => ({ code: 0, data, text });

/** Wrong usage of a verb, found by the command line itself: exit 1, the message names the argument. */
export class UsageError extends Error {
  readonly code = "USAGE";
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A string flag, or undefined; a flag given twice where one is expected is wrong usage. */
export function single(flags: Flags, name: string): string | undefined {
  const value = flags[name];
  if (value === undefined || typeof value === "boolean") return undefined;
  if (Array.isArray(value)) {
    if (value.length > 1) throw new UsageError(`--${name} was given ${value.length} times: give it once`);
    return typeof value[0] === "string" ? value[0] : undefined;
  }
  return value;
}

import { closeSync, constants, existsSync, fstatSync, openSync, readFileSync, readlinkSync, realpathSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/**
 * Reads a file the container wrote, at `path` under `root`, never through a link: a directory on
 * the way must resolve inside `root`, the file itself is opened with O_NOFOLLOW (a link is
 * reported, not followed), and the opened descriptor must be that very path (/proc/self/fd), so
 * a swap between the checks and the open is caught. `refuse` throws the caller's error.
 */
export function readInside(
  root: string,
  path: string,
  refuse: (reason: string, problem: "outside" | "not-a-file") => never,
): { kind: "file"; content: Buffer } | { kind: "link"; target: string } | { kind: "missing" } {
  const realRoot = realpathSync(root);
  const within = (real: string) => real === realRoot || real.startsWith(`${realRoot}/`);
  const wanted = join(realRoot, path);
  if (!existsSync(dirname(wanted))) return { kind: "missing" };
  const parent = realpathSync(dirname(wanted));
  if (!within(parent)) refuse(`leads outside ${root} through a link`, "outside");
  const candidate = join(parent, basename(wanted));
  let descriptor: number;
  try {
    descriptor = openSync(candidate, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { kind: "missing" };
    if (code === "ELOOP") return { kind: "link", target: readlinkSync(candidate) };
    throw error;
  }
  try {
    if (!fstatSync(descriptor).isFile()) refuse("is not a regular file", "not-a-file");
    let opened = candidate;
    try {
      opened = readlinkSync(`/proc/self/fd/${descriptor}`);
    } catch {
      // No /proc (not Linux): the checks above stand alone.
    }
    if (opened !== candidate) refuse(`leads to ${opened}, outside ${root}`, "outside");
    return { kind: "file", content: readFileSync(descriptor) };
  } finally {
    closeSync(descriptor);
  }
}

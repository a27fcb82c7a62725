import { closeSync, constants, existsSync, fstatSync, openSync, readlinkSync, readSync, realpathSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/** Why a path was refused: it leads outside its root, or it is not a regular file. */
export type InsideRefusal = (reason: string, problem: "outside" | "not-a-file") => never;

/**
 * Opens a file the container wrote, at `path` under `root`, never through a link: a directory on
 * the way must resolve inside `root`, the file itself is opened with O_NOFOLLOW (a link is
 * reported, not followed), and the opened descriptor must be that very path (/proc/self/fd), so
 * a swap between the checks and the open is caught. `refuse` throws the caller's error. The
 * caller closes the descriptor.
 */
export function openInside(
  root: string,
  path: string,
  refuse: InsideRefusal,
): { kind: "file"; descriptor: number; sizeBytes: number } | { kind: "link"; target: string } | { kind: "missing" } {
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
    const stat = fstatSync(descriptor);
    if (!stat.isFile()) refuse("is not a regular file", "not-a-file");
    let opened = candidate;
    try {
      opened = readlinkSync(`/proc/self/fd/${descriptor}`);
    } catch {
      // No /proc (not Linux): the checks above stand alone.
    }
    if (opened !== candidate) refuse(`leads to ${opened}, outside ${root}`, "outside");
    return { kind: "file", descriptor, sizeBytes: stat.size };
  } catch (error) {
    closeSync(descriptor);
    throw error;
  }
}

/**
 * Reads at most `maxBytes` from `descriptor` at `position`, in chunks: never more than asked,
 * whatever the file's size says (the container may grow it while it is read).
 */
export function readAt(descriptor: number, position: number, maxBytes: number): Buffer {
  const buffer = Buffer.allocUnsafe(Math.min(maxBytes, 1 << 20));
  const chunks: Buffer[] = [];
  let total = 0;
  while (total < maxBytes) {
    const read = readSync(descriptor, buffer, 0, Math.min(buffer.length, maxBytes - total), position + total);
    if (read === 0) break;
    chunks.push(Buffer.from(buffer.subarray(0, read)));
    total += read;
  }
  return Buffer.concat(chunks, total);
}

/**
 * Reads a whole file the container wrote, the way {@link openInside} opens it, up to `maxBytes`:
 * a larger file is never read, `tooLarge(sizeBytes)` throws the caller's error instead.
 */
export function readInside(
  root: string,
  path: string,
  refuse: InsideRefusal,
  { maxBytes, tooLarge }: { maxBytes: number; tooLarge: (sizeBytes: number) => never },
): { kind: "file"; content: Buffer } | { kind: "link"; target: string } | { kind: "missing" } {
  const opened = openInside(root, path, refuse);
  if (opened.kind !== "file") return opened;
  try {
    if (opened.sizeBytes > maxBytes) tooLarge(opened.sizeBytes);
    // One byte more than allowed tells a file that grew since fstat.
    const content = readAt(opened.descriptor, 0, maxBytes + 1);
    if (content.length > maxBytes) tooLarge(content.length);
    return { kind: "file", content };
  } finally {
    closeSync(opened.descriptor);
  }
}

import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";

/** Options of {@link writeFileAtomic} and {@link writeFileAtomicSync}. */
export interface WriteFileAtomicOptions {
  /** The new file's permission bits. @default 0o644 */
  mode?: number;
  /** Flush the data and the directory entry to disk, so the new content survives a power loss. @default true */
  fsync?: boolean;
}

let written = 0;
/**
 * A temporary name beside `path`, unique to this process and write (the pid, a counter, the
 * clock): no random bytes, which cost a CSPRNG call per write. It is created exclusively, so a
 * clash (another pid namespace on a shared volume) fails instead of sharing a file.
 */
const temporaryFor = (path: string) =>
  `${path}.${process.pid}.${(written++).toString(36)}${(process.hrtime.bigint() & 0xffffffffn).toString(36)}.tmp`;

/** Flushes a directory's entries (the rename) to disk; a file system that cannot is left as it is. */
function syncDirectory(directory: string): void {
  let descriptor: number | undefined;
  try {
    descriptor = openSync(directory, "r");
    fsyncSync(descriptor);
  } catch {
    // Some file systems refuse fsync on a directory (EINVAL, EISDIR): the rename stands anyway.
  } finally {
    if (descriptor !== undefined) closeSync(descriptor);
  }
}

/**
 * Writes a file so that readers see the old content or the new, never half of it: the data goes
 * to a temporary file beside the target (created exclusively), is flushed to disk, renamed over
 * the target, and the directory is flushed too. On a failure the temporary file is removed and
 * the target is untouched. The one write-then-rename of bulkhead: every package uses it.
 *
 * @example
 * await writeFileAtomic(".bulkhead/state.json", JSON.stringify(state));
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  { mode = 0o644, fsync = true }: WriteFileAtomicOptions = {},
): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temporary = temporaryFor(path);
  const handle = await open(temporary, "wx", mode);
  try {
    await handle.writeFile(data);
    if (fsync) await handle.sync();
    await handle.close();
    await rename(temporary, path);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temporary, { force: true });
    throw error;
  }
  if (fsync) syncDirectory(dirname(path));
}

/**
 * {@link writeFileAtomic}, synchronously: for a few bytes (a lock holder, a fencing token, a
 * result) the thread pool costs more than the write.
 */
export function writeFileAtomicSync(
  path: string,
  data: string | Uint8Array,
  { mode = 0o644, fsync = true }: WriteFileAtomicOptions = {},
): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = temporaryFor(path);
  const descriptor = openSync(temporary, "wx", mode);
  try {
    try {
      const bytes = typeof data === "string" ? Buffer.from(data) : data;
      for (let offset = 0; offset < bytes.byteLength;) offset += writeSync(descriptor, bytes, offset);
      if (fsync) fsyncSync(descriptor);
    } finally {
      closeSync(descriptor);
    }
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
  if (fsync) syncDirectory(dirname(path));
}

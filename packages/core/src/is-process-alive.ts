/**
 * True when a process with this pid exists on this host (signal 0 reaches it, or it exists but
 * belongs to another user). The one pid check of bulkhead: locks and leases use it to tell a
 * holder that died from one that is only slow.
 *
 * @example
 * if (!isProcessAlive(holder.pid)) breakLock();
 */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

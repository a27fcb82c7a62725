/**
 * True while a process with this pid exists on this host (EPERM: it exists, under another user).
 * Sandbox's one pid check, until core exports one: i12-core-lead adds `isProcessAlive` to core
 * with this very signature; once merged, this file goes and pause-session.ts imports core's.
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

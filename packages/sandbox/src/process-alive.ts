/**
 * True while a process with this pid exists on this host (EPERM: it exists, under another user).
 * Sandbox's one pid check, until core exports one (core's lock has its own, not exported).
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

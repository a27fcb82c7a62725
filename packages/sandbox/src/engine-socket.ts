import { lstatSync, readdirSync, statSync, type Stats } from "node:fs";
import { join } from "node:path";

/** A Docker (or containerd) engine socket on this host, by identity. */
export interface EngineSocket {
  path: string;
  dev: number;
  ino: number;
  gid: number;
}

/** How many entries of a mounted directory are looked through for the socket; a larger one is refused. */
export const MAX_MOUNT_SCAN_ENTRIES = 500_000;

/**
 * The engine's sockets on this host, by what they are (device and inode of a socket): the one
 * `DOCKER_HOST` names, `/var/run/docker.sock`, `/run/docker.sock` and containerd's. Mounting one,
 * under any name, gives the container the host.
 */
export function engineSockets(): EngineSocket[] {
  const named = [
    process.env.DOCKER_HOST?.startsWith("unix://") ? process.env.DOCKER_HOST.slice("unix://".length) : undefined,
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
  ];
  const found = new Map<string, EngineSocket>();
  for (const path of named) {
    if (path === undefined) continue;
    let stat: Stats;
    try {
      stat = statSync(path);
    } catch {
      continue;
    }
    if (stat.isSocket() && !found.has(`${stat.dev}:${stat.ino}`))
      found.set(`${stat.dev}:${stat.ino}`, { path, dev: stat.dev, ino: stat.ino, gid: stat.gid });
  }
  return [...found.values()];
}

const isEngine = (stat: Stats, sockets: readonly EngineSocket[]) =>
  stat.isSocket() && sockets.find((socket) => socket.dev === stat.dev && socket.ino === stat.ino);

/**
 * Whether mounting `source` would expose an engine socket: the source itself is one (followed as
 * Docker follows it: a link to the socket is the socket), or it is a directory in which one is
 * found (a hard link has another name but the same device and inode). The directory is walked
 * without following links (inside the container a link resolves against the container's own
 * tree) and across the mounts below it (Docker binds recursively), each directory once. Returns
 * the path where the socket was found, `"too-large"` when the directory has more than
 * {@link MAX_MOUNT_SCAN_ENTRIES} entries (refused: it cannot be checked), or undefined.
 */
export function findEngineSocket(source: string, sockets: readonly EngineSocket[] = engineSockets()): string | "too-large" | undefined {
  if (sockets.length === 0) return undefined;
  let top: Stats;
  try {
    top = statSync(source);
  } catch {
    return undefined;
  }
  if (isEngine(top, sockets)) return source;
  if (!top.isDirectory()) return undefined;
  const visited = new Set<string>([`${top.dev}:${top.ino}`]);
  const stack = [source];
  let entries = 0;
  while (stack.length > 0) {
    const dir = stack.pop()!;
    let names;
    try {
      names = readdirSync(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const entry of names) {
      if (++entries > MAX_MOUNT_SCAN_ENTRIES) return "too-large";
      // Only sockets and directories can matter; the entry type comes with readdir, free.
      if (entry.isFile() || entry.isSymbolicLink() || entry.isFIFO() || entry.isCharacterDevice() || entry.isBlockDevice()) continue;
      const path = join(dir, entry.name);
      let stat: Stats;
      try {
        stat = lstatSync(path);
      } catch {
        continue;
      }
      if (isEngine(stat, sockets)) return path;
      if (stat.isDirectory() && !visited.has(`${stat.dev}:${stat.ino}`)) {
        visited.add(`${stat.dev}:${stat.ino}`);
        stack.push(path);
      }
    }
  }
  return undefined;
}

/**
 * Why a device path is not one to pass through, or undefined: it must be a character or block
 * device node (a link to one is followed, as Docker does); a directory such as `/dev` would
 * pass every device in it, the host's raw disks too.
 */
export function deviceNodeProblem(hostPath: string): string | undefined {
  let stat: Stats;
  try {
    stat = statSync(hostPath);
  } catch {
    return undefined;
  }
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return undefined;
  const kind = stat.isDirectory() ? "a directory" : stat.isSocket() ? "a socket" : stat.isFile() ? "a regular file" : "not a device";
  return `${hostPath} is ${kind}, not a character or block device node: name each device itself (e.g. /dev/fuse)`;
}

/**
 * Why a session user needs an explicit opt-out, or undefined: uid 0 (root in the container),
 * or a group that owns an engine socket (it could drive the engine if a socket ever reached
 * the container). A user without a group runs with group 0.
 */
export function sessionUserProblem(
  user: string,
  { allowRootUser = false, allowEngineSocketGroup = false }: { allowRootUser?: boolean; allowEngineSocketGroup?: boolean },
  sockets: readonly EngineSocket[] = engineSockets(),
): string | undefined {
  const [uid, gid = "0"] = user.split(":");
  if (Number(uid) === 0 && !allowRootUser)
    return `security.user "${user}" is root (uid 0) inside the container: use a non-root user, or set security.allowRootUser: true if the agent must be root`;
  const socket = sockets.find((candidate) => candidate.gid === Number(gid));
  if (socket && !allowEngineSocketGroup)
    return (
      `the session user "${user}" is in group ${gid}, which owns the engine socket ${socket.path}: ` +
      "use another group (security.user), or set security.allowEngineSocketGroup: true"
    );
  return undefined;
}

import { lstatSync, type BigIntStats } from "node:fs";
import { connect } from "node:net";

/** A socket file's identity: its device and inode (decimal strings: exact beyond 2^53). */
export interface SocketIdentity {
  dev: string;
  ino: string;
}

/** What is at a session's gateway socket path when `continue` would serve a gateway there again. */
export type GatewaySocketState =
  /** Nothing: a gateway can listen there. */
  | { state: "absent" }
  /** The socket dispatch created, and something accepts connections on it: a gateway still serves the session. */
  | { state: "serving" }
  /** The socket dispatch created, left by a gateway that ended: it can be replaced. */
  | { state: "ended" }
  /**
   * Something else in the socket's place: a link, another socket, a file, or a socket swapped while
   * it was checked. Never connected to (through). `reason` says which, for the person.
   */
  | { state: "foreign"; reason: string }
  /** A directory: the path must be cleared by hand. */
  | { state: "blocked"; reason: string };

const lstatOf = (path: string): BigIntStats | undefined => {
  try {
    return lstatSync(path, { bigint: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
};

/** The identity of the socket at `path`, read without following a link; throws when it is not a socket. */
export function socketIdentity(path: string): SocketIdentity {
  const stats = lstatOf(path);
  if (!stats?.isSocket()) throw new Error(`${path} is not a unix socket`);
  return { dev: stats.dev.toString(), ino: stats.ino.toString() };
}

const connects = (path: string): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect(path);
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });

/**
 * Reads what is at a session's gateway socket path, by identity: the path is read with `lstat`
 * (a link is never followed) and a socket is compared with the device and inode dispatch recorded
 * when it created it (`recorded`; a record from before identities were kept checks the type only).
 * Only the socket dispatch created is connected to, to learn whether a gateway still serves it:
 * the directory is mounted into the session's box, so anything else there may be the agent's, and
 * a link planted in the socket's place must not make the host connect to what it points at.
 */
export async function gatewaySocketState(path: string, recorded?: SocketIdentity): Promise<GatewaySocketState> {
  const before = lstatOf(path);
  if (!before) return { state: "absent" };
  if (before.isDirectory()) return { state: "blocked", reason: `${path} is a directory, not the gateway's socket` };
  if (before.isSymbolicLink()) return { state: "foreign", reason: `${path} is a symbolic link, not the socket dispatch created` };
  if (!before.isSocket()) return { state: "foreign", reason: `${path} is a file, not the socket dispatch created` };
  const same = (stats: BigIntStats) =>
    recorded === undefined
      ? stats.ino === before.ino && stats.dev === before.dev
      : stats.dev.toString() === recorded.dev && stats.ino.toString() === recorded.ino;
  if (!same(before))
    return { state: "foreign", reason: `${path} is another socket than the one dispatch created (its device and inode differ)` };
  const answered = await connects(path);
  // Swapped between the check and the connection: what answered (or not) may not be the session's socket.
  const after = lstatOf(path);
  if (!after?.isSocket() || !same(after)) return { state: "foreign", reason: `${path} was replaced while it was checked` };
  return answered ? { state: "serving" } : { state: "ended" };
}

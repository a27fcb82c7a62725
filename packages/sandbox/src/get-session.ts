import { existsSync } from "node:fs";
import { join } from "node:path";
import { InvalidArgumentError } from "@bulkhead/core";
import Docker from "dockerode";
import { SessionError } from "./sandbox-errors.js";
import { Session } from "./session.js";
import { defaultHome, readSessionState, sessionDir } from "./session-state-store.js";

/** Reattaches to a session by id, from any process. */
export function getSession(id: string, { docker = new Docker(), home = defaultHome() }: { docker?: Docker; home?: string } = {}): Session {
  // The id often comes from a command line: it names a directory under home, never a path.
  if (typeof id !== "string" || !/^s[a-z0-9]{6,40}$/.test(id))
    throw new InvalidArgumentError("id", `${JSON.stringify(id)} is not a session id (like s1a2b3c4d5e6f7): see bulkhead session list`);
  const path = join(sessionDir(home, id), "state.json");
  if (!existsSync(path)) throw new SessionError("get", `no session "${id}" under ${home}`);
  return new Session(readSessionState(home, id), docker, home);
}

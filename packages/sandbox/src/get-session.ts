import { existsSync } from "node:fs";
import { join } from "node:path";
import { InvalidArgumentError, validateOptions, type SandboxBackend } from "@bulkhead/core";
import { z } from "zod";
import { backendSchema } from "./backend-option.js";
import { createDockerBackend } from "./docker-backend.js";
import { SessionError } from "./sandbox-errors.js";
import { Session } from "./session.js";
import { defaultHome, readSessionState, sessionDir } from "./session-state-store.js";

/** Options of {@link getSession}. */
export interface GetSessionOptions {
  /** Where the session's container runs. @default the Docker backend (`createDockerBackend()`) */
  readonly backend?: SandboxBackend;
  /** The state directory. @default `$BULKHEAD_HOME`, else `~/.bulkhead` */
  readonly home?: string;
}

const getSessionOptionsSchema = () => z.strictObject({ backend: backendSchema().optional(), home: z.string().min(1).optional() });

/**
 * Reattaches to a session by id, from any process. The session is not this object's to end:
 * disposing it (`await using`) leaves it running (`ownsLifecycle: false`); `stop()` and
 * `remove()` still work when called.
 *
 * @example
 * const session = getSession("s1a2b3c4d5e6f7");
 * console.log((await session.changes()).repos.length);
 */
export function getSession(id: string, options: GetSessionOptions = {}): Session {
  const { backend = createDockerBackend(), home = defaultHome() } = validateOptions(getSessionOptionsSchema(), options, "options");
  // The id often comes from a command line: it names a directory under home, never a path.
  if (typeof id !== "string" || !/^s[a-z0-9]{6,40}$/.test(id))
    throw new InvalidArgumentError("id", `${JSON.stringify(id)} is not a session id (like s1a2b3c4d5e6f7): see bulkhead session list`);
  const path = join(sessionDir(home, id), "state.json");
  if (!existsSync(path)) throw new SessionError("get", `no session "${id}" under ${home}`);
  return new Session({ state: readSessionState(home, id), backend, home, ownsLifecycle: false });
}

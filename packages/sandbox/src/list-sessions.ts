import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { validateOptions, type SandboxBackend, type SandboxInstanceState } from "@bulkhead/core";
import { z } from "zod";
import { LABEL } from "./build-image.js";
import { backendSchema } from "./backend-option.js";
import { homeLabel } from "./container-spec.js";
import { createDockerBackend } from "./docker-backend.js";
import { defaultHome, type SessionState } from "./session-state-store.js";

/** Options of {@link listSessions}. */
export interface ListSessionsOptions {
  /** Only this project's sessions. @default every project */
  readonly project?: string;
  /** Where the sessions' containers run. @default the Docker backend */
  readonly backend?: SandboxBackend;
  /** The state directory. @default `$BULKHEAD_HOME`, else `~/.bulkhead` */
  readonly home?: string;
}

/** One session as {@link listSessions} finds it. */
export interface SessionListing {
  readonly id: string;
  readonly project: string;
  readonly createdAt: string;
  /** The container's state on the backend; `missing` when it is gone (the workspace is still on disk). */
  readonly container: SandboxInstanceState | "missing";
}

const listSessionsOptionsSchema = () =>
  z.strictObject({ project: z.string().optional(), backend: backendSchema().optional(), home: z.string().min(1).optional() });

/** Sessions on this host, from their state files and their containers' labels, oldest first. */
export async function listSessions(options: ListSessionsOptions = {}): Promise<SessionListing[]> {
  const {
    project,
    backend = createDockerBackend(),
    home = defaultHome(),
  } = validateOptions(listSessionsOptionsSchema(), options, "options");
  const containers = await backend.list({ labels: { [`${LABEL}.session`]: true, [`${LABEL}.home`]: homeLabel(home) } });
  const byId = new Map(containers.map((container) => [container.labels[`${LABEL}.session`]!, container.state]));
  const dir = join(home, "sessions");
  const ids = existsSync(dir)
    ? readdirSync(dir).filter((name) => existsSync(join(dir, name, "state.json")) && statSync(join(dir, name)).isDirectory())
    : [];
  return ids
    .map((id) => JSON.parse(readFileSync(join(dir, id, "state.json"), "utf8")) as SessionState)
    .filter((state) => !project || state.project === project)
    .map((state): SessionListing => ({
      id: state.id,
      project: state.project,
      createdAt: state.createdAt,
      container: byId.get(state.id) ?? "missing",
    }))
    .sort((left, right) => left.createdAt.localeCompare(right.createdAt));
}

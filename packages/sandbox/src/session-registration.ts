import { hostname } from "node:os";
import { InvalidArgumentError, type SandboxBackend, type SessionRecord, type SessionRegistry } from "@bulkhead/core";

/**
 * Where a session is recorded for the team: a {@link SessionRegistry} (files on one host, or
 * `createPostgresSessionRegistry` of @bulkhead/postgres for many) and the name of this host in it.
 */
export interface SessionRegistration {
  registry: SessionRegistry;
  /** This host's name in the registry. @default `$BULKHEAD_HOST`, else the hostname */
  host?: string;
}

/** This host's name in a registry. */
export const registryHost = (registration: SessionRegistration): string => registration.host ?? process.env.BULKHEAD_HOST ?? hostname();

function checkRegistration(registration: SessionRegistration): void {
  const { registry } = registration;
  if (typeof registry?.register !== "function" || typeof registry.remove !== "function" || typeof registry.list !== "function")
    throw new InvalidArgumentError("options.registration.registry", "expected a SessionRegistry (register, update, get, list, remove)");
  if (registration.host !== undefined && (typeof registration.host !== "string" || registration.host === ""))
    throw new InvalidArgumentError("options.registration.host", "expected this host's name");
}

/** Records a new session (this host, its engine) in the team's registry. */
export async function registerSession(
  registration: SessionRegistration,
  session: { id: string; project: string },
  backend: SandboxBackend,
): Promise<SessionRecord> {
  checkRegistration(registration);
  return registration.registry.register({
    id: session.id,
    host: registryHost(registration),
    engine: backend.engine,
    project: session.project,
    state: "running",
  });
}

/** Forgets a session in the team's registry; only its own host may. A session never registered is fine. */
export async function unregisterSession(registration: SessionRegistration, id: string): Promise<void> {
  checkRegistration(registration);
  await registration.registry.remove(id, { host: registryHost(registration) });
}

/**
 * The team's sessions from the registry, on every host, with who holds each: the listing
 * `bulkhead session list` prints when a store is configured.
 *
 * @example
 * for (const session of await listTeamSessions({ registry })) console.log(session.id, session.host, session.engine);
 */
export async function listTeamSessions(
  registration: SessionRegistration,
  { project }: { project?: string } = {},
): Promise<SessionRecord[]> {
  checkRegistration(registration);
  const records = await registration.registry.list();
  return records.filter((record) => record.state !== "removed" && (project === undefined || record.project === project));
}

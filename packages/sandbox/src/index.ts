// The public API of @bulkhead/sandbox: one deliberate list.
// Internal to the package (not exported): LABEL, containerSpec and homeLabel.
export { buildImage, imageTag } from "./build-image.js";
export { checkDevices, type GrantedDevices } from "./container-spec.js";
export { defineProject, loadProject, MAX_PROJECT_BYTES, projectSchema, type Project, type ProjectInput } from "./project-config.js";
export {
  DeviceUnavailableError,
  DiskLimitError,
  EngineUnavailableError,
  InvalidProjectError,
  SessionContainerMissingError,
  SessionError,
  SessionPausedError,
  WorkspaceFileTooLargeError,
} from "./sandbox-errors.js";
export { createSession } from "./create-session.js";
export { gatewayRouteSchema, type GatewayRoute, type GatewayRouteOptions } from "./gateway-route.js";
export { getSession } from "./get-session.js";
export { openShell, type ShellStreams } from "./open-shell.js";
export { Job, MAX_JOB_LOG_BYTES } from "./job.js";
export { listSessions } from "./list-sessions.js";
export { engineOf, listTeamSessions, registerSession, unregisterSession, type SessionRegistration } from "./session-registration.js";
export { MAX_WORKSPACE_FILE_BYTES, Session, type ExecResult } from "./session.js";
export { type JobRecord, type SessionState } from "./session-state-store.js";
export { type FetchCodeOptions, type FetchResult } from "./workspace-inspection.js";
export { type ChangesOptions } from "./session-changes.js";
export { MAX_CHANGED_FILE_BYTES } from "./read-changes.js";
export { createSessions, gc, reconcile, type Reconciliation } from "./manage-sessions.js";

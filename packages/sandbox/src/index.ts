// The public API of @bulkhead/sandbox: one deliberate list.
// Internal to the package (not exported): LABEL, containerSpec, homeLabel and the session internals.
export { buildImage, imageTag, type BuildImageOptions } from "./build-image.js";
export { checkDevices, type CheckDevicesOptions, type GrantedDevices } from "./container-spec.js";
export { createDockerBackend, engineOf, type DockerBackendOptions } from "./docker-backend.js";
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
export { createSession, type CreateSessionOptions } from "./create-session.js";
export { gatewayRouteSchema, type GatewayRoute, type GatewayRouteOptions } from "./gateway-route.js";
export { getSession, type GetSessionOptions } from "./get-session.js";
export { openShell, type OpenShellOptions, type ShellStreams } from "./open-shell.js";
export { Job, MAX_JOB_LOG_BYTES, type JobKillOptions, type JobLogsOptions, type JobWaitOptions } from "./job.js";
export { listSessions, type ListSessionsOptions, type SessionListing } from "./list-sessions.js";
export { listTeamSessions, registerSession, unregisterSession, type SessionRegistration } from "./session-registration.js";
export {
  MAX_WORKSPACE_FILE_BYTES,
  Session,
  type ExecOptions,
  type ExecResult,
  type InjectOptions,
  type RemoveReport,
  type SecurityReport,
  type StopReport,
} from "./session.js";
export { type JobRecord, type SessionState } from "./session-state-store.js";
export { type FetchCodeOptions, type FetchResult } from "./workspace-inspection.js";
export { type ChangesOptions } from "./session-changes.js";
export { MAX_CHANGED_FILE_BYTES } from "./read-changes.js";
export {
  createSessions,
  gc,
  reconcile,
  type CreateSessionsOptions,
  type ReconcileOptions,
  type Reconciliation,
} from "./manage-sessions.js";

// The public API of @bulkhead/sandbox: one deliberate list.
export { buildImage, imageTag, LABEL } from "./build-image.js";
export { checkDevices, containerSpec, homeLabel, type GrantedDevices } from "./container-spec.js";
export { defineProject, loadProject, projectSchema, type Project, type ProjectInput } from "./project-config.js";
export { DeviceUnavailableError, InvalidProjectError, SessionError } from "./sandbox-errors.js";
export {
  createSession,
  getSession,
  Job,
  listSessions,
  Session,
  type ExecResult,
  type FetchResult,
  type JobRecord,
  type SessionState,
} from "./session.js";
export { createSessions, gc, reconcile, type Reconciliation } from "./manage-sessions.js";

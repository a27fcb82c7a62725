// The public API of @bulkhead/git-lead: one deliberate list.
// CommitLead is exported as a type: leads are made by createCommitLead, which checks the options and the repository.
export {
  createCommitLead,
  type CommitLead,
  type CommitLeadEvents,
  type CommitLeadOptions,
  type CommitLeadStatus,
  type RecoverOptions,
  type RecoveryReport,
} from "./create-commit-lead.js";
export { type LandingLock, type RemoteLandingOptions } from "./remote-landing.js";
export {
  SUBMISSION_LIMITS,
  type CommandGate,
  type FunctionGate,
  type Gate,
  type GateResult,
  type Submission,
  type SubmitResult,
} from "./submission.js";
export { ClaimRefusedError, GitConflictError, InvalidPlanError, LeadFencedError } from "./git-lead-errors.js";
export {
  createWorkHook,
  type Claim,
  type ClaimNextOptions,
  type ClaimOptions,
  type CompleteOptions,
  type CreateWorkHookOptions,
  type FailOptions,
  type HookTask,
  type ReleaseOptions,
  type RenewOptions,
  type WorkHook,
} from "./create-work-hook.js";
export { findSharedFiles, type FindSharedFilesOptions, type ResolvedTask, type ScopedTask, type SharedFile } from "./find-shared-files.js";
export { planWaves, validateTasks, type PlannedTask, type PlanWavesOptions } from "./plan-waves.js";
export { planWork, type PlanWorkOptions, type WorkPlan } from "./plan-work.js";

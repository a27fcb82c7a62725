// The public API of @bulkhead/git-lead: one deliberate list.
export { CommitLead, createCommitLead, type CommitLeadEvents, type CommitLeadOptions } from "./create-commit-lead.js";
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
export { createWorkHook, type Claim, type HookTask, type WorkHook } from "./create-work-hook.js";
export { findSharedFiles, type ResolvedTask, type ScopedTask, type SharedFile } from "./find-shared-files.js";
export { planWaves, validateTasks, type PlannedTask } from "./plan-waves.js";
export { planWork, type PlanWorkOptions, type WorkPlan } from "./plan-work.js";

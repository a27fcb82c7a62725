// The public API of @bulkhead/core: one deliberate list.
export { AbortedError, throwIfAborted } from "./aborted-error.js";
export { createDeadline, sleep, type Deadline, type DeadlineOptions } from "./deadline.js";
export { BUDGET_KINDS, LATE_BUDGET_KINDS, type BudgetKind } from "./budget-kind.js";
export {
  budgetVector,
  findBudgetRefusal,
  type BudgetAmounts,
  type BudgetLevelState,
  type BudgetRefusal,
  type BudgetStore,
  type BudgetStoreEvent,
  type ReserveOutcome,
  type SettleOutcome,
  type StoredLease,
} from "./budget-store.js";
export type {
  AgentEvent,
  AgentEventParser,
  AgentGatewayAccess,
  AgentInvocation,
  AgentProvider,
  AgentRunRequest,
} from "./agent-provider.js";
export { BULKHEAD_ERROR_CODES, BulkheadError, errorMarker, type BulkheadErrorCode, type BulkheadErrorOptions } from "./bulkhead-error.js";
export { ClaimRefusedError } from "./claim-refused-error.js";
export type { AgentCommit, ChangeKind, ChangeSet, ChangedEntry, ChangedPath, GitFileMode, RepoChangeSet } from "./change-set.js";
export { InvalidArgumentError } from "./invalid-argument-error.js";
export { isProcessAlive } from "./is-process-alive.js";
export { InvalidTaskSpecError, formatTaskSpecProblem, type TaskSpecProblem } from "./invalid-task-spec-error.js";
export { LockTimeoutError } from "./lock-timeout-error.js";
export { didYouMean } from "./did-you-mean.js";
export { suggestNarrowing, type NarrowingAdvice, type NarrowingStep } from "./suggest-narrowing.js";
export {
  createMultiRepoGuard,
  MultiRepoGuard,
  type GuardEvents,
  type MultiRepoGuardOptions,
  type ProposeResult,
} from "./multi-repo-guard.js";
export { MAX_TASK_SPEC_BYTES, loadTaskSpec, parseTaskSpec, type ParseTaskSpecOptions } from "./parse-task-spec.js";
export { formatYamlPath, locateYamlPath, type YamlPath } from "./yaml-location.js";
export { formatUsd } from "./format-usd.js";
export { PathOutsideRootError } from "./path-outside-root-error.js";
export { ProposalAlreadyDecidedError, ProposalNotFoundError } from "./proposal-errors.js";
export { createFileProposalStore, createMemoryProposalStore, type ProposalStore } from "./proposal-store.js";
export {
  proposalChangeSchema,
  proposalLandingSchema,
  proposalSchema,
  proposalTargetSchema,
  type Proposal,
  type ProposalChange,
  type ProposalLanding,
  type ProposalStatus,
  type ProposalTarget,
} from "./proposal.js";
export { fromProposalChange, toProposalChange } from "./proposal-change.js";
export { unifiedDiff } from "./unified-diff.js";
export { isPathWithin, normalizeRepoPath, type NormalizedRepoPath } from "./repo-path.js";
export { resolvePathInside, type LinkPolicy, type ResolvedPathInside } from "./resolve-path-inside.js";
export {
  resolveScope,
  type RefusedPath,
  type ResolveScopeOptions,
  type ResolvedScope,
  type ScopeFile,
  type ScopeLink,
  type SkippedFile,
} from "./resolve-scope.js";
export { createScopeCache, type CachedContent, type ScopeCache, type ScopeCacheOptions } from "./scope-cache.js";
export { ScopeLimitError, type ScopeHotspot, type ScopeViolation } from "./scope-limit-error.js";
export { createScopeMatcher } from "./scope-matcher.js";
export {
  checkSessionRecord,
  createFileSessionRegistry,
  sessionOwnerError,
  type SessionRecord,
  type SessionRegistry,
} from "./session-registry.js";
export type {
  SandboxBackend,
  SandboxCommand,
  SandboxDevice,
  SandboxExecOptions,
  SandboxFault,
  SandboxGpuRequest,
  SandboxImageBuild,
  SandboxInspection,
  SandboxInstance,
  SandboxInstanceState,
  SandboxMount,
  SandboxSecurity,
  SandboxSpec,
  SandboxTerminal,
} from "./sandbox-backend.js";
export { StoreUnavailableError } from "./store-unavailable-error.js";
export { taskSpecJsonSchema } from "./task-spec-json-schema.js";
export { REPO_NAME_PATTERN, taskSpecFileSchema, taskSpecToFile, type ScopeRepo, type TaskSpec, type TaskSpecFile } from "./task-spec.js";
export { ESTIMATE_BYTES_PER_TOKEN, createByteEstimateCounter, type TokenCounter } from "./token-counter.js";
export { TypedEmitter, type EventListener } from "./typed-emitter.js";
export {
  addUsage,
  addUsageReports,
  emptyUsage,
  usageBreakdownSchema,
  usageReportSchema,
  usageSchema,
  type Usage,
  type UsageBreakdown,
  type UsageReport,
} from "./usage.js";
export { formatZodIssues } from "./format-zod-issues.js";
export { validateOptions } from "./validate-options.js";
export { lazySchema } from "./lazy-schema.js";
export { acquireFileLock, tryAcquireFileLock, type FileLockHolder, type FileLockOptions, type HeldFileLock } from "./file-lock.js";
export { withFileLock } from "./with-file-lock.js";
export { writeFileAtomic, writeFileAtomicSync, type WriteFileAtomicOptions } from "./write-file-atomic.js";
export type { Claim, HookTask, WorkHookStore } from "./work-hook-store.js";

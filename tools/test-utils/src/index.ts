export { TEST_LABEL, docker, ensureDocker, ensureTestImage, restartEngine } from "./docker.js";
export { createTempDir, git, initRepo, gitInWorkspace, type TempDir } from "./fs.js";
export {
  createScriptedUpstream,
  type RecordedRequest,
  type ScriptedApi,
  type ScriptedToolUse,
  type ScriptedTurn,
  type ScriptedUpstream,
  type ScriptedUpstreamOptions,
  type ScriptedUsage,
} from "./scripted-upstream.js";
export { POSTGRES_TEST_USER, findPostgresBin, startTestPostgres, type TestPostgres } from "./postgres.js";
export { describeBudgetStore, replayBudgetLedger } from "./budget-store-conformance.js";
export { describeWorkHook } from "./work-hook-conformance.js";
export { describeProposalStore } from "./proposal-store-conformance.js";
export { describeSessionRegistry } from "./session-registry-conformance.js";
export { describeSandboxBackend, type SandboxBackendFixture } from "./sandbox-backend-conformance.js";
export { describeMemoryStore, sampleMemoryEntry } from "./memory-store-conformance.js";
export { claudeCodeBinary, claudeCodeEnv, codexEntry, runAgentCli, writeCodexConfig, type AgentCliRun } from "./agent-cli.js";

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

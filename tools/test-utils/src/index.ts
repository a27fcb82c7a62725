export { TEST_LABEL, docker, ensureDocker, ensureTestImage, restartEngine } from "./docker.js";
export { createTempDir, git, initRepo, workspaceGit, type TempDir } from "./fs.js";

export { TEST_LABEL, docker, ensureDocker, ensureTestImage, restartEngine } from "./docker.js";
export { createTempDir, git, initRepo, gitInWorkspace, type TempDir } from "./fs.js";

import type { TestProject } from "vitest/node";
import { ensureDocker, ensureTestImage, removeStoppedTestContainers } from "./docker.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** The offline busybox image built for this run. */
    testImage: string;
  }
}

/**
 * Vitest global setup: a Docker engine and the offline test image, for every test file. At the
 * end, the stopped test containers this run created are removed, then the engine is stopped if
 * this run started it.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = new Date();
  const engine = await ensureDocker();
  project.provide("testImage", ensureTestImage());
  return async () => {
    removeStoppedTestContainers(started);
    await engine.stop();
  };
}

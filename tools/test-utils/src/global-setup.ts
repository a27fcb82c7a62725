import type { TestProject } from "vitest/node";
import { ensureDocker, ensureTestImage } from "./docker.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** The offline busybox image built for this run. */
    testImage: string;
  }
}

/** Vitest global setup: a Docker engine and the offline test image, for every test file. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const engine = await ensureDocker();
  project.provide("testImage", ensureTestImage());
  return () => engine.stop();
}

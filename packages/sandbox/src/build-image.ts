import { createHash } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { throwIfAborted, validateOptions, type SandboxBackend } from "@bulkhead/core";
import { z } from "zod";
import { backendSchema } from "./backend-option.js";
import { createDockerBackend } from "./docker-backend.js";
import type { Project } from "./project-config.js";
import { InvalidProjectError, SessionError } from "./sandbox-errors.js";

/** Label on every image and container bulkhead creates. */
export const LABEL = "dev.bulkhead";

function hashTree(root: string, hash: ReturnType<typeof createHash>): void {
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile())
        hash
          .update(relative(root, path))
          .update(`\0${statSync(path).mode & 0o111 ? "x" : "-"}\0`)
          .update(readFileSync(path))
          .update("\0");
      else if (entry.isSymbolicLink()) hash.update(relative(root, path)).update("\0link\0").update(readlinkSync(path)).update("\0");
    }
  };
  walk(root);
}

/** The image tag: a hash of everything that shapes the image. */
export function imageTag(project: Project): string {
  if ("existing" in project.image) return project.image.existing;
  // Content-addressed by its maker (and shared across projects): its files are not hashed again.
  if ("tag" in project.image && project.image.tag) return project.image.tag;
  const hash = createHash("sha256").update(project.image.dockerfile);
  if ("files" in project.image)
    for (const [target, source] of Object.entries(project.image.files).sort())
      if (statSync(source).isDirectory()) hashTree(source, hash.update(target).update("\0dir\0"));
      else
        hash
          .update(target)
          .update(`\0${statSync(source).mode & 0o111 ? "x" : "-"}\0`)
          .update(readFileSync(source));
  else if (project.image.context) hashTree(project.image.context, hash);
  return `bulkhead-${project.name}:${hash.digest("hex").slice(0, 16)}`;
}

/** Options of {@link buildImage}. */
export interface BuildImageOptions {
  /** Where the image is built and kept. @default the Docker backend (`createDockerBackend()`) */
  readonly backend?: SandboxBackend;
  /** Build again even when the tag exists. @default false */
  readonly force?: boolean;
  /** Each line of the build's output. @default dropped */
  readonly onProgress?: (line: string) => void;
  /** Cancels the build; it throws `AbortedError`. @default no signal */
  readonly abortSignal?: AbortSignal;
}

const buildImageOptionsSchema = () =>
  z.strictObject({
    backend: backendSchema().optional(),
    force: z.boolean().optional(),
    onProgress: z.custom<(line: string) => void>((value) => typeof value === "function", "expected a function").optional(),
    abortSignal: z.instanceof(AbortSignal).optional(),
  });

/**
 * Bakes the project's image once: the tag is a hash of the Dockerfile and every file it can see,
 * so an unchanged project reuses its image (`cached: true`) and nothing is pulled from a
 * registry unless the Dockerfile asks. An `existing` image must already be on the host.
 *
 * @example
 * const { tag, cached } = await buildImage(project, { onProgress: (line) => console.log(line) });
 */
export async function buildImage(project: Project, options: BuildImageOptions = {}): Promise<{ tag: string; cached: boolean }> {
  const {
    backend = createDockerBackend(),
    force = false,
    onProgress,
    abortSignal,
  } = validateOptions(buildImageOptionsSchema(), options, "options");
  throwIfAborted(abortSignal, "buildImage");
  const tag = imageTag(project);
  const exists = await backend.imageExists(tag);
  if ("existing" in project.image) {
    if (!exists)
      throw new InvalidProjectError([`image.existing: image "${tag}" is not on this host: build or load it first (no registry is used)`]);
    return { tag, cached: true };
  }
  if (exists && !force) return { tag, cached: true };

  const context = mkdtempSync(join(tmpdir(), "bulkhead-build-"));
  try {
    if ("files" in project.image) {
      for (const [target, source] of Object.entries(project.image.files)) {
        mkdirSync(dirname(join(context, target)), { recursive: true });
        cpSync(source, join(context, target), { recursive: true });
      }
    } else if (project.image.context) cpSync(project.image.context, context, { recursive: true });
    writeFileSync(join(context, "Dockerfile.bulkhead"), project.image.dockerfile);
    await backend
      .buildImage({
        context,
        dockerfile: "Dockerfile.bulkhead",
        tag,
        // A shared image (its own tag) belongs to no one project.
        labels: { [LABEL]: "1", ...("tag" in project.image && project.image.tag ? {} : { [`${LABEL}.project`]: project.name }) },
        onProgress,
        abortSignal,
      })
      .catch((error: unknown) => {
        if ((error as { code?: string }).code === "ABORTED" || (error as Error).name === "AbortError") {
          throwIfAborted(abortSignal, "buildImage");
        }
        throw new SessionError("build", (error as Error).message, error);
      });
    return { tag, cached: false };
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}

import { createHash } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { throwIfAborted } from "@bulkhead/core";
import Docker from "dockerode";
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

/**
 * Bakes the project's image once: the tag is a hash of the Dockerfile and every file it can see,
 * so an unchanged project reuses its image (`cached: true`) and nothing is pulled from a
 * registry unless the Dockerfile asks. An `existing` image must already be on the host.
 *
 * @example
 * const { tag, cached } = await buildImage(project, { onProgress: (line) => console.log(line) });
 */
export async function buildImage(
  project: Project,
  {
    docker = new Docker(),
    force = false,
    onProgress,
    abortSignal,
  }: { docker?: Docker; force?: boolean; onProgress?: (line: string) => void; abortSignal?: AbortSignal } = {},
): Promise<{ tag: string; cached: boolean }> {
  throwIfAborted(abortSignal, "buildImage");
  const tag = imageTag(project);
  const exists = await docker
    .getImage(tag)
    .inspect()
    .then(
      () => true,
      () => false,
    );
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
    const src: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else src.push(relative(context, path));
      }
    };
    walk(context);
    const stream = await docker.buildImage({ context, src }, {
      t: tag,
      dockerfile: "Dockerfile.bulkhead",
      // A shared image (its own tag) belongs to no one project.
      labels: { [LABEL]: "1", ...("tag" in project.image && project.image.tag ? {} : { [`${LABEL}.project`]: project.name }) },
      // A failed step's intermediate container goes too, not only a successful build's.
      forcerm: true,
      abortSignal,
    } as Docker.ImageBuildOptions);
    await new Promise<void>((resolve, reject) => {
      docker.modem.followProgress(
        stream,
        (error: Error | null, output: { error?: string; errorDetail?: { message?: string } }[]) => {
          const failure = error?.message ?? output.find((line) => line.error)?.error;
          if (failure) reject(new SessionError("build", `docker build of ${tag} failed: ${failure.trim()}`));
          else resolve();
        },
        (event: { stream?: string; status?: string }) => {
          const line = (event.stream ?? event.status ?? "").trim();
          if (line) onProgress?.(line);
        },
      );
    });
    return { tag, cached: false };
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}

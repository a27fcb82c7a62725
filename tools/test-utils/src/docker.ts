import { createHash } from "node:crypto";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
// @ts-expect-error: a plain .mjs script without types, shared with the root scripts.
import { BUSYBOX_PATH, ensureDockerEngine, restartEngine as restartDaemon } from "../../../scripts/docker-engine.mjs";

/** The label every image and container created by tests carries, for cleanup. */
export const TEST_LABEL = "dev.bulkhead.test";

/** Runs the docker CLI and returns its trimmed stdout; throws with stderr on failure. */
export function docker(args: readonly string[], options: { input?: string } = {}): string {
  const result = spawnSync("docker", args, { encoding: "utf8", input: options.input, maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`docker ${args.join(" ")} failed (exit ${result.status}): ${result.stderr.trim()}`);
  return result.stdout.trim();
}

/**
 * Makes sure a Docker engine is reachable (installing and starting one when root on Debian).
 * Returns `stop()`, which stops the engine only if this call started it.
 */
export async function ensureDocker(): Promise<{ started: boolean; stop: () => Promise<void> }> {
  return ensureDockerEngine();
}

/**
 * Stops the running dockerd and starts it again (root only): every container stops with it.
 * Only the engine-restart test stage calls this; nothing else may run at the same time.
 */
export async function restartEngine(): Promise<void> {
  await restartDaemon();
}

/**
 * Removes the stopped containers of the test image (they carry {@link TEST_LABEL}) created at or
 * after `since`: a session a test disposed is stopped, not removed (`stop()` keeps it for a later
 * `start()`), so a run would otherwise leave one container per such test. Running containers
 * are left alone: another run on the same engine may own them. `label` narrows it further
 * (`key=value`). Returns how many were removed.
 */
export function removeStoppedTestContainers(since: Date, options: { label?: string } = {}): number {
  const labels = [`label=${TEST_LABEL}=1`, ...(options.label ? [`label=${options.label}`] : [])].flatMap((label) => ["--filter", label]);
  const listed = docker([
    "ps",
    "-a",
    ...labels,
    "--filter",
    "status=exited",
    "--filter",
    "status=created",
    "--format",
    "{{.ID}} {{.CreatedAt}}",
  ]);
  const ids = listed
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [id, day, time, zone] = line.split(" ");
      return { id: id!, created: new Date(`${day}T${time}${zone === "+0000" ? "Z" : (zone ?? "").replace(/(\d\d)(\d\d)$/, "$1:$2")}`) };
    })
    // Docker prints whole seconds: a container created in the setup's own second counts as ours.
    .filter(({ created }) => created.getTime() >= Math.floor(since.getTime() / 1000) * 1000)
    .map(({ id }) => id);
  if (ids.length > 0) docker(["rm", "-f", ...ids]);
  return ids.length;
}

/**
 * Builds, once, a tiny offline image `FROM scratch` holding the static busybox from Debian's
 * `busybox-static`, with its applets linked into `/bin`. Nothing is pulled. Returns the tag,
 * which is derived from the busybox binary and the Dockerfile, so a rebuild happens only when
 * either changes.
 */
export function ensureTestImage(): string {
  const dockerfile = [
    "FROM scratch",
    "COPY rootfs/ /",
    'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
    `LABEL ${TEST_LABEL}=1 ${TEST_LABEL}.version=2`,
    'CMD ["/bin/sh"]',
    "",
  ].join("\n");
  const busybox = readFileSync(BUSYBOX_PATH);
  const hash = createHash("sha256").update(busybox).update(dockerfile).digest("hex").slice(0, 12);
  const tag = `bulkhead-test-busybox:${hash}`;
  if (spawnSync("docker", ["image", "inspect", tag], { stdio: "ignore" }).status === 0) return tag;

  const context = mkdtempSync(join(tmpdir(), "bulkhead-test-image-"));
  try {
    mkdirSync(join(context, "rootfs", "bin"), { recursive: true });
    mkdirSync(join(context, "rootfs", "tmp"), { recursive: true });
    // Like any distribution image: Docker copies this mode onto the tmpfs mounted over /tmp.
    chmodSync(join(context, "rootfs", "tmp"), 0o1777);
    cpSync(BUSYBOX_PATH, join(context, "rootfs", "bin", "busybox"));
    writeFileSync(join(context, "Dockerfile"), dockerfile);
    execFileSync("docker", ["build", "--quiet", "--tag", tag, context], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, DOCKER_BUILDKIT: "0" },
    });
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
  return tag;
}

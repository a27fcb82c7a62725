import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { validateOptions, type SandboxBackend, type SandboxSpec } from "@bulkhead/core";
import { z } from "zod";
import { LABEL } from "./build-image.js";
import { backendSchema } from "./backend-option.js";
import { createDockerBackend } from "./docker-backend.js";
import type { Project } from "./project-config.js";
import { deviceNodeProblem } from "./engine-socket.js";
import { DeviceUnavailableError, InvalidProjectError } from "./sandbox-errors.js";

/** Sessions of one state directory (`home`) share this label, so tools never touch another home's containers. */
export function homeLabel(home: string): string {
  return createHash("sha256").update(resolve(home)).digest("hex").slice(0, 16);
}

/** What the device pre-check granted. */
export interface GrantedDevices {
  devices: string[];
  gpus: boolean;
  skipped: string[];
}

/** Options of {@link checkDevices}. */
export interface CheckDevicesOptions {
  /** Where the session will run: asked whether it can serve GPU requests. @default the Docker backend */
  readonly backend?: SandboxBackend;
}

const checkDevicesOptionsSchema = () => z.strictObject({ backend: backendSchema().optional() });

/**
 * Checks requested devices before anything is created: device paths must exist and be character
 * or block device nodes (never a directory such as `/dev`), and a GPU
 * request needs a GPU runtime (`nvidia` in `docker info` runtimes, or CDI specs). Required and
 * missing throws {@link DeviceUnavailableError}; optional and missing is skipped and reported.
 */
export async function checkDevices(project: Project, options: CheckDevicesOptions = {}): Promise<GrantedDevices> {
  const { backend = createDockerBackend() } = validateOptions(checkDevicesOptionsSchema(), options, "options");
  const granted: GrantedDevices = { devices: [], gpus: false, skipped: [] };
  for (const device of project.devices.devices) {
    // Checked again here, at creation: the path may have changed since the project was defined.
    const problem = deviceNodeProblem(device.hostPath);
    if (problem) throw new InvalidProjectError([`devices: ${problem}`]);
    if (existsSync(device.hostPath)) granted.devices.push(device.hostPath);
    else if (device.required)
      throw new DeviceUnavailableError(`device ${device.hostPath}`, "check the path, or mark it required: false to start without it");
    else granted.skipped.push(device.hostPath);
  }
  if (project.devices.gpus !== undefined) {
    if (await backend.gpuRuntime()) granted.gpus = true;
    else if (project.devices.gpuRequired)
      throw new DeviceUnavailableError(
        "a GPU runtime",
        "docker info lists no nvidia runtime and no CDI specs: install the NVIDIA Container Toolkit, or set devices.gpuRequired: false",
      );
    else granted.skipped.push("gpus");
  }
  return granted;
}

/**
 * The session's instance, engine-neutral: readable, testable, and what `createSession` sends to
 * its backend (which adds the hardening every instance has: see {@link SandboxSpec}).
 */
export function containerSpec(
  project: Project,
  {
    tag,
    sessionId,
    workspace,
    user,
    granted,
    env,
    version,
    home,
    gateway,
    objects = [],
  }: {
    tag: string;
    sessionId: string;
    workspace: string;
    user: string;
    granted: GrantedDevices;
    env: Record<string, string>;
    version: string;
    /** The state directory, labelled (hashed) so each home only sees its own containers. */
    home?: string;
    /** A gateway route (see gateway-route.ts): its read-only mounts, and the forwarder as the first process. */
    gateway?: { binds: string[]; cmd: string[] };
    /** Source object directories the clones borrow: the container reads them, read-only, at the same path. */
    objects?: readonly string[];
  },
): SandboxSpec {
  const gpus = project.devices.gpus;
  const bind = (text: string) => {
    const [host, container, mode] = text.split(":") as [string, string, string | undefined];
    return { host, container, readOnly: mode === "ro" };
  };
  return {
    image: tag,
    name: `bulkhead-${sessionId}`,
    // A long-lived, idle process that exits at once on SIGTERM; work runs through exec.
    // With a gateway route, the forwarder is that process, so a restarted container has its route again.
    command: gateway?.cmd ?? ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"],
    user,
    workdir: `/workspace/${project.workdir ?? project.repos[0]!.name}`,
    env,
    labels: {
      [LABEL]: "1",
      ...(home ? { [`${LABEL}.home`]: homeLabel(home) } : {}),
      [`${LABEL}.session`]: sessionId,
      [`${LABEL}.project`]: project.name,
      [`${LABEL}.config-hash`]: project.configHash,
      [`${LABEL}.version`]: version,
    },
    mounts: [
      { host: workspace, container: "/workspace", readOnly: false },
      ...project.repos
        .filter((repo) => repo.mode === "mount-ro")
        .map((repo) => ({ host: repo.path, container: `/workspace/${repo.name}`, readOnly: true })),
      ...project.mounts.map((mount) => ({ host: mount.host, container: mount.container, readOnly: mount.readOnly })),
      ...(gateway?.binds ?? []).map(bind),
      ...objects.map((dir) => ({ host: dir, container: dir, readOnly: true })),
    ],
    tmpfs: { "/tmp": "rw,nosuid,nodev,size=256m,mode=1777" },
    network: project.network,
    limits: { pids: project.resources.pids, memoryBytes: project.resources.memoryMb * 1024 * 1024, cpus: project.resources.cpus },
    readonlyRoot: !project.security.writableRoot,
    // A daemon restart stops every container; this brings sessions back after it, unless
    // they were stopped on purpose (session.stop()).
    restartWithEngine: true,
    devices: project.devices.devices
      .filter((device) => granted.devices.includes(device.hostPath))
      .map((device) => ({
        hostPath: device.hostPath,
        containerPath: device.containerPath ?? device.hostPath,
        permissions: device.permissions,
      })),
    gpus:
      gpus === undefined || !granted.gpus
        ? undefined
        : {
            count: gpus === "all" ? -1 : typeof gpus === "number" ? gpus : 0,
            ...(Array.isArray(gpus) ? { deviceIds: gpus } : {}),
            capabilities: project.devices.gpuCapabilities,
          },
    ...(project.runtime ? { runtime: project.runtime } : {}),
  };
}

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type Docker from "dockerode";
import { LABEL } from "./build-image.js";
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

/**
 * Checks requested devices before anything is created: device paths must exist and be character
 * or block device nodes (never a directory such as `/dev`), and a GPU
 * request needs a GPU runtime (`nvidia` in `docker info` runtimes, or CDI specs). Required and
 * missing throws {@link DeviceUnavailableError}; optional and missing is skipped and reported.
 */
export async function checkDevices(project: Project, docker: Docker): Promise<GrantedDevices> {
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
    const info = (await docker.info()) as { Runtimes?: Record<string, unknown>; CDISpecDirs?: string[] };
    // The engine's own view: an nvidia runtime, or CDI spec directories it reports (Docker 25+).
    // Older engines do not report CDISpecDirs; then the usual directories are looked at, which is
    // only right when the engine runs on this host.
    const cdiDirs = info.CDISpecDirs ?? ["/etc/cdi", "/var/run/cdi"];
    const runtime =
      Object.keys(info.Runtimes ?? {}).some((name) => name.includes("nvidia")) ||
      (info.CDISpecDirs !== undefined ? info.CDISpecDirs.length > 0 : cdiDirs.some((dir) => existsSync(dir)));
    if (runtime) granted.gpus = true;
    else if (project.devices.gpuRequired)
      throw new DeviceUnavailableError(
        "a GPU runtime",
        "docker info lists no nvidia runtime and no CDI specs: install the NVIDIA Container Toolkit, or set devices.gpuRequired: false",
      );
    else granted.skipped.push("gpus");
  }
  return granted;
}

/** The hardened container spec for a session: readable, testable, and what `createSession` sends. */
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
    /** A gateway route (see gateway-route.ts): its read-only binds, and the forwarder as the first process. */
    gateway?: { binds: string[]; cmd: string[] };
  },
): Docker.ContainerCreateOptions {
  const gpus = project.devices.gpus;
  const binds = [
    `${workspace}:/workspace:rw`,
    ...project.repos.filter((repo) => repo.mode === "mount-ro").map((repo) => `${repo.path}:/workspace/${repo.name}:ro`),
    ...project.mounts.map((mount) => `${mount.host}:${mount.container}:${mount.readOnly ? "ro" : "rw"}`),
    ...(gateway?.binds ?? []),
  ];
  return {
    Image: tag,
    name: `bulkhead-${sessionId}`,
    // A long-lived, idle process that exits at once on SIGTERM; work runs through exec.
    // With a gateway route, the forwarder is that process, so a restarted container has its route again.
    Cmd: gateway?.cmd ?? ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"],
    User: user,
    WorkingDir: `/workspace/${project.workdir ?? project.repos[0]!.name}`,
    Env: Object.entries(env).map(([key, value]) => `${key}=${value}`),
    Labels: {
      [LABEL]: "1",
      ...(home ? { [`${LABEL}.home`]: homeLabel(home) } : {}),
      [`${LABEL}.session`]: sessionId,
      [`${LABEL}.project`]: project.name,
      [`${LABEL}.config-hash`]: project.configHash,
      [`${LABEL}.version`]: version,
    },
    NetworkDisabled: project.network === "none",
    HostConfig: {
      Binds: binds,
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges"],
      NetworkMode: project.network,
      PidsLimit: project.resources.pids,
      Memory: project.resources.memoryMb * 1024 * 1024,
      NanoCpus: Math.round(project.resources.cpus * 1e9),
      ReadonlyRootfs: !project.security.writableRoot,
      Tmpfs: { "/tmp": "rw,nosuid,nodev,size=256m,mode=1777" },
      Privileged: false,
      // A daemon restart stops every container; this brings sessions back after it, unless
      // they were stopped on purpose (session.stop()).
      RestartPolicy: { Name: "unless-stopped" },
      Devices: project.devices.devices
        .filter((device) => granted.devices.includes(device.hostPath))
        .map((device) => ({
          PathOnHost: device.hostPath,
          PathInContainer: device.containerPath ?? device.hostPath,
          CgroupPermissions: device.permissions,
        })),
      DeviceRequests:
        gpus === undefined || !granted.gpus
          ? []
          : [
              {
                Driver: "",
                Count: gpus === "all" ? -1 : typeof gpus === "number" ? gpus : 0,
                DeviceIDs: Array.isArray(gpus) ? gpus : undefined,
                Capabilities: [project.devices.gpuCapabilities],
              },
            ],
      ...(project.runtime ? { Runtime: project.runtime } : {}),
    },
  };
}

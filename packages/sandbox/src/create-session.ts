import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { throwIfAborted } from "@bulkhead/core";
import Docker from "dockerode";
import { buildImage } from "./build-image.js";
import { cloneRepos, objectBinds } from "./clone-repos.js";
import { checkDevices, containerSpec } from "./container-spec.js";
import { prepareGatewayRoute, waitForForwarder, type GatewayRouteOptions } from "./gateway-route.js";
import { run } from "./git.js";
import type { Project } from "./project-config.js";
import { findEngineSocket, sessionUserProblem } from "./engine-socket.js";
import { InvalidProjectError, SessionError } from "./sandbox-errors.js";
import { registerSession, type SessionRegistration } from "./session-registration.js";
import { Session } from "./session.js";
import { defaultHome, sessionDir, writeSessionState, type SessionState } from "./session-state-store.js";
import { VERSION } from "./version.js";

/**
 * Creates a started session: a workspace on the host with a clone of each repo (borrowing the
 * source's objects through a read-only mount)
 * on branch `bulkhead/<id>` (read-only repos are bind-mounted instead), and one long-lived,
 * hardened container over it. Creation is atomic: if a step fails, what earlier steps created is
 * removed and the error names the step.
 *
 * @example
 * await using session = await createSession(project);
 * const { stdout } = await session.exec(["git", "status"]);
 */
export async function createSession(
  project: Project,
  {
    tag,
    docker = new Docker(),
    home = defaultHome(),
    abortSignal,
    gateway,
    registration,
  }: {
    tag?: string;
    docker?: Docker;
    home?: string;
    abortSignal?: AbortSignal;
    /** The session's only route out: a model gateway's unix socket on the host (see docs/sandbox.md). */
    gateway?: GatewayRouteOptions;
    /** Record the session in the team's registry (this host, its engine); a failure undoes the session. */
    registration?: SessionRegistration;
  } = {},
): Promise<Session> {
  throwIfAborted(abortSignal, "createSession");
  const id = `s${Date.now().toString(36)}${randomBytes(4).toString("hex")}`;
  const cleanup: (() => Promise<unknown>)[] = [];
  let step = "devices";
  try {
    // Non-root inside: the host user, or 1000 when the host user is root (files then belong to 1000).
    const uid = process.getuid?.() ?? 1000;
    const gid = process.getgid?.() ?? 1000;
    const user = project.security.user ?? (uid === 0 ? "1000:1000" : `${uid}:${gid}`);
    const userProblem = sessionUserProblem(user, project.security);
    if (userProblem) throw new InvalidProjectError([userProblem]);
    const granted = await checkDevices(project, docker);
    step = "image";
    const image = tag ?? (await buildImage(project, { docker, ...(abortSignal ? { abortSignal } : {}) })).tag;
    step = "workspace";
    const dir = sessionDir(home, id);
    const workspace = join(dir, "workspace");
    mkdirSync(join(workspace, ".bulkhead", "jobs"), { recursive: true });
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    // Before the clones: the session user's git writes them into it (see cloneRepo).
    if (uid === 0) await run("chown", [user, workspace, join(workspace, ".bulkhead"), join(workspace, ".bulkhead", "jobs")]);
    const branch = `bulkhead/${id}`;
    let repos: SessionState["repos"];
    let objects: string[];
    try {
      ({ repos, objects } = await cloneRepos(project, { workspace, user, branch, abortSignal }));
    } catch (error) {
      if ((error as { step?: string }).step) step = (error as { step: string }).step;
      throw error;
    }
    const env: Record<string, string> = { ...project.env, HOME: "/tmp" };
    for (const name of project.passEnv) if (process.env[name] !== undefined) env[name] = process.env[name]!;
    throwIfAborted(abortSignal, "createSession");
    // The mounts were checked when the project was defined; what they hold may have changed since.
    for (const source of [
      ...project.mounts.map((mount) => mount.host),
      ...project.repos.filter((repo) => repo.mode === "mount-ro").map((repo) => repo.path),
    ]) {
      const found = findEngineSocket(source);
      if (found !== undefined)
        throw new InvalidProjectError([
          found === "too-large"
            ? `mounts: ${source} is too large to check for the Docker socket: mount a narrower directory`
            : `mounts: the Docker socket is never mounted into a session (${source}${found !== source ? ` holds ${found}` : ""})`,
        ]);
    }
    // --- gateway route (gateway-route.ts): checked before the container exists ---
    step = "gateway";
    const route =
      gateway === undefined ? undefined : prepareGatewayRoute(gateway, { sessionDir: dir, workspace, user, network: project.network });
    if (route) env.BULKHEAD_GATEWAY_URL = route.route.baseUrl;
    // --- end gateway route ---
    step = "container";
    const spec = containerSpec(project, {
      tag: image,
      sessionId: id,
      workspace,
      user,
      granted,
      env,
      version: VERSION,
      home,
      ...(route ? { gateway: route } : {}),
    });
    // The clones borrow their source's objects: the container reads them, read-only, at the same path.
    spec.HostConfig!.Binds = [...(spec.HostConfig!.Binds ?? []), ...objectBinds(objects)];
    const container = await docker.createContainer(spec);
    cleanup.push(() => container.remove({ force: true }));
    throwIfAborted(abortSignal, "createSession");
    step = "start";
    await container.start();
    if (route) {
      step = "gateway";
      await waitForForwarder(workspace, container);
    }
    const state: SessionState = {
      id,
      project: project.name,
      configHash: project.configHash,
      tag: image,
      createdAt: new Date().toISOString(),
      workspace,
      user,
      workdir: `/workspace/${project.workdir ?? project.repos[0]!.name}`,
      env,
      ...(project.agent ? { agent: project.agent } : {}),
      granted,
      repos,
      jobs: [],
      ...(route ? { gateway: route.route } : {}),
      ...(project.resources.diskMb !== undefined ? { diskLimitBytes: project.resources.diskMb * 2 ** 20 } : {}),
    };
    step = "state";
    await writeSessionState(home, state);
    if (registration) {
      step = "registry";
      await registerSession(registration, { id, project: project.name }, docker);
    }
    return new Session(state, docker, home);
  } catch (error) {
    for (const undo of cleanup.reverse()) await undo().catch(() => undefined);
    if (
      error instanceof SessionError ||
      (error as { code?: string }).code === "DEVICE_UNAVAILABLE" ||
      (error as { code?: string }).code === "INVALID_PROJECT" ||
      (error as { code?: string }).code === "ABORTED"
    )
      throw error;
    throw new SessionError(step, (error as Error).message, error);
  }
}

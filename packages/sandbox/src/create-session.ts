import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { throwIfAborted, validateOptions, type SandboxBackend } from "@bulkhead/core";
import { z } from "zod";
import { buildImage } from "./build-image.js";
import { cloneRepos } from "./clone-repos.js";
import { backendSchema } from "./backend-option.js";
import { checkDevices, containerSpec } from "./container-spec.js";
import { createDockerBackend } from "./docker-backend.js";
import { prepareGatewayRoute, waitForForwarder, type GatewayRouteOptions } from "./gateway-route.js";
import { run } from "./git.js";
import type { Project } from "./project-config.js";
import { findEngineSocket, sessionUserProblem } from "./engine-socket.js";
import { InvalidProjectError, SessionError } from "./sandbox-errors.js";
import { registerSession, type SessionRegistration } from "./session-registration.js";
import { Session } from "./session.js";
import { defaultHome, sessionDir, writeSessionState, type SessionState } from "./session-state-store.js";
import { VERSION } from "./version.js";

/** Options of {@link createSession}. */
export interface CreateSessionOptions {
  /** An image already baked for the project (from `buildImage`). @default baked (or reused) here */
  readonly tag?: string;
  /** Where the container runs. @default the Docker backend (`createDockerBackend()`) */
  readonly backend?: SandboxBackend;
  /** The state directory. @default `$BULKHEAD_HOME`, else `~/.bulkhead` */
  readonly home?: string;
  /** Checked before each step; an abort undoes what was made and throws `AbortedError`. @default no signal */
  readonly abortSignal?: AbortSignal;
  /** The session's only route out: a model gateway's unix socket on the host (see docs/sandbox.md). @default no route */
  readonly gateway?: GatewayRouteOptions;
  /** Record the session in the team's registry (this host, its engine); a failure undoes the session. @default not recorded */
  readonly registration?: SessionRegistration;
}

const createSessionOptionsSchema = () =>
  z.strictObject({
    tag: z.string().min(1).optional(),
    backend: backendSchema().optional(),
    home: z.string().min(1).optional(),
    abortSignal: z.instanceof(AbortSignal).optional(),
    // Checked in full where they are used (gateway-route.ts, session-registration.ts).
    gateway: z.custom<GatewayRouteOptions>((value) => typeof value === "object" && value !== null).optional(),
    registration: z.custom<SessionRegistration>((value) => typeof value === "object" && value !== null).optional(),
  });

/**
 * Creates a started session: a workspace on the host with a clone of each repo (borrowing the
 * source's objects through a read-only mount)
 * on branch `bulkhead/<id>` (read-only repos are bind-mounted instead), and one long-lived,
 * hardened container over it. Creation is atomic: if a step fails, what earlier steps created is
 * removed and the error names the step. The session is the caller's: disposing it stops it.
 *
 * @example
 * await using session = await createSession(project);
 * const { stdout } = await session.exec(["git", "status"]);
 */
export async function createSession(project: Project, options: CreateSessionOptions = {}): Promise<Session> {
  const {
    tag,
    backend = createDockerBackend(),
    home = defaultHome(),
    abortSignal,
    gateway,
    registration,
  } = validateOptions(createSessionOptionsSchema(), options, "options");
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
    const granted = await checkDevices(project, { backend });
    step = "image";
    const image = tag ?? (await buildImage(project, { backend, ...(abortSignal ? { abortSignal } : {}) })).tag;
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
      objects,
    });
    await backend.create(spec, { abortSignal });
    cleanup.push(() => backend.remove(spec.name));
    throwIfAborted(abortSignal, "createSession");
    step = "start";
    await backend.start(spec.name);
    if (route) {
      step = "gateway";
      await waitForForwarder(workspace, backend, spec.name, { abortSignal });
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
      await registerSession(registration, { id, project: project.name }, backend);
    }
    return new Session({ state, backend, home, ownsLifecycle: true });
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

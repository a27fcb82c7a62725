import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { validateOptions, type SandboxBackend } from "@bulkhead/core";
import pLimit from "p-limit";
import { z } from "zod";
import { backendSchema } from "./backend-option.js";
import { buildImage, LABEL } from "./build-image.js";
import { createDockerBackend } from "./docker-backend.js";
import { homeLabel } from "./container-spec.js";
import { recoverStalePause } from "./pause-session.js";
import type { Project } from "./project-config.js";
import { createSession } from "./create-session.js";
import type { Session } from "./session.js";
import { defaultHome, type SessionState } from "./session-state-store.js";

/** Options of {@link createSessions}. */
export interface CreateSessionsOptions {
  /** How many are created at once. @default 4 */
  readonly concurrency?: number;
  /** Where the containers run. @default the Docker backend */
  readonly backend?: SandboxBackend;
  /** The state directory. @default `$BULKHEAD_HOME`, else `~/.bulkhead` */
  readonly home?: string;
  /** An abort removes the sessions already created and throws `AbortedError`. @default no signal */
  readonly abortSignal?: AbortSignal;
}

const countSchema = () =>
  z.number().refine((count) => Number.isInteger(count) && count >= 1 && count <= 1000, {
    error: (issue) => `expected a whole number of sessions from 1 to 1000, got ${String(issue.input)}`,
  });

const createSessionsOptionsSchema = () =>
  z.strictObject({
    concurrency: z.number().int("expected a positive whole number").min(1, "expected a positive whole number").optional(),
    backend: backendSchema().optional(),
    home: z.string().min(1).optional(),
    abortSignal: z.instanceof(AbortSignal).optional(),
  });

/**
 * Creates `count` sessions of one project, `concurrency` at a time, baking the image once. All or
 * nothing: if one fails, the ones already created are removed and the error is thrown.
 *
 * @example
 * const sessions = await createSessions(project, 8, { concurrency: 4 });
 */
export async function createSessions(project: Project, count: number, options: CreateSessionsOptions = {}): Promise<Session[]> {
  validateOptions(countSchema(), count, "count");
  const {
    concurrency = 4,
    backend = createDockerBackend(),
    home = defaultHome(),
    abortSignal,
  } = validateOptions(createSessionsOptionsSchema(), options, "options");
  const { tag } = await buildImage(project, { backend, ...(abortSignal ? { abortSignal } : {}) });
  const limit = pLimit(concurrency);
  const outcomes = await Promise.allSettled(
    Array.from({ length: count }, () =>
      limit(() => createSession(project, { tag, backend, home, ...(abortSignal ? { abortSignal } : {}) })),
    ),
  );
  const created = outcomes
    .filter((outcome): outcome is PromiseFulfilledResult<Session> => outcome.status === "fulfilled")
    .map((outcome) => outcome.value);
  const failed = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === "rejected");
  if (failed) {
    await Promise.all(created.map((session) => session.remove({ force: true }).catch(() => undefined)));
    throw failed.reason;
  }
  return created;
}

/** What differs between the state files and the engine. */
export interface Reconciliation {
  /** Containers labelled as sessions with no state file. */
  orphanContainers: string[];
  /** Sessions whose container is gone (the workspace is still on disk). */
  missingContainers: string[];
  /**
   * Sessions whose container was made from another config than the state records or, when
   * `project` is given, than that project's current config (the config file changed since).
   */
  configDrift: string[];
  /** Sessions whose container exists but is not running: `session.start()` brings it back. */
  stopped: string[];
  /**
   * Session directories without a state file, older than ten minutes: a controller died while
   * creating them (a younger one may still be being created). `gc` removes them.
   */
  incomplete: string[];
  /**
   * Sessions whose container was left paused by a controller that died during a paused read
   * (`fetchCode`, `changes()`): reconcile unpaused them.
   */
  unpaused: string[];
}

/** Options of {@link reconcile}. */
export interface ReconcileOptions {
  /** Where the containers run. @default the Docker backend */
  readonly backend?: SandboxBackend;
  /** The state directory. @default `$BULKHEAD_HOME`, else `~/.bulkhead` */
  readonly home?: string;
  /** Also report sessions made from an older config of this project. @default none */
  readonly project?: Project;
}

const reconcileOptionsSchema = () =>
  z.strictObject({
    backend: backendSchema().optional(),
    home: z.string().min(1).optional(),
    project: z.custom<Project>((value) => typeof value === "object" && value !== null).optional(),
  });

const gcOptionsSchema = () =>
  z.strictObject({
    dryRun: z.boolean().optional(),
    missing: z.boolean().optional(),
    backend: backendSchema().optional(),
    home: z.string().min(1).optional(),
  });

/** A creation takes seconds; a directory this old without its state file was abandoned. */
const INCOMPLETE_AFTER_MS = 10 * 60_000;

/**
 * Compares the sessions' state files with the containers the engine has for this `home`, after a
 * restart or a crash. Containers of other homes (other users, other tests) are never considered.
 */
export async function reconcile(options: ReconcileOptions = {}): Promise<Reconciliation> {
  const { backend = createDockerBackend(), home = defaultHome(), project } = validateOptions(reconcileOptionsSchema(), options, "options");
  const containers = await backend.list({ labels: { [`${LABEL}.session`]: true, [`${LABEL}.home`]: homeLabel(home) } });
  const dir = join(home, "sessions");
  const states = new Map<string, SessionState>();
  const incomplete: string[] = [];
  if (existsSync(dir)) {
    for (const id of readdirSync(dir)) {
      const path = join(dir, id, "state.json");
      if (existsSync(path)) states.set(id, JSON.parse(readFileSync(path, "utf8")) as SessionState);
      else if (Date.now() - statSync(join(dir, id)).mtimeMs > INCOMPLETE_AFTER_MS) incomplete.push(id);
    }
  }
  const seen = new Set<string>();
  const result: Reconciliation = { orphanContainers: [], missingContainers: [], configDrift: [], stopped: [], incomplete, unpaused: [] };
  for (const container of containers) {
    const id = container.labels[`${LABEL}.session`]!;
    seen.add(id);
    const state = states.get(id);
    if (!state) result.orphanContainers.push(id);
    else if (
      container.labels[`${LABEL}.config-hash`] !== state.configHash ||
      (project && state.project === project.name && state.configHash !== project.configHash)
    )
      result.configDrift.push(id);
    if (state && container.state === "paused" && (await recoverStalePause({ id, home, backend, instance: container.name })))
      result.unpaused.push(id);
    else if (state && container.state !== "running") result.stopped.push(id);
  }
  for (const id of states.keys()) if (!seen.has(id)) result.missingContainers.push(id);
  return result;
}

/**
 * Removes what no session can use any more: containers without a state file and, with
 * `missing: true`, state and workspace of sessions whose container is gone. `dryRun` only reports.
 */
export async function gc(
  options: {
    /** Only report. @default false */
    dryRun?: boolean;
    /** Also remove sessions whose container is gone. @default false */
    missing?: boolean;
    /** Where the containers run. @default the Docker backend */
    backend?: SandboxBackend;
    /** The state directory. @default `$BULKHEAD_HOME`, else `~/.bulkhead` */
    home?: string;
  } = {},
): Promise<{
  removedContainers: string[];
  removedSessions: string[];
}> {
  const {
    dryRun = false,
    missing = false,
    backend = createDockerBackend(),
    home = defaultHome(),
  } = validateOptions(gcOptionsSchema(), options, "options");
  const found = await reconcile({ backend, home });
  // An abandoned creation's directory goes; its container, if it got that far, is an orphan.
  const removedSessions = [...found.incomplete, ...(missing ? found.missingContainers : [])];
  if (!dryRun) {
    for (const id of found.orphanContainers) await backend.remove(`bulkhead-${id}`).catch(() => undefined);
    for (const id of removedSessions) rmSync(join(home, "sessions", id), { recursive: true, force: true });
  }
  return { removedContainers: found.orphanContainers, removedSessions };
}

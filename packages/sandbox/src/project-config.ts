import { createHash } from "node:crypto";
import { closeSync, existsSync, fstatSync, openSync, statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { isScalar, parseDocument, visit } from "yaml";
import { z } from "zod";
import { deviceNodeProblem, engineSockets, findEngineSocket, MAX_MOUNT_SCAN_ENTRIES, sessionUserProblem } from "./engine-socket.js";
import { readAt } from "./read-inside.js";
import { projectProblems } from "./project-problems.js";
import { InvalidProjectError } from "./sandbox-errors.js";

/** The largest project file (or text) accepted: 2 MiB. A project is a few hundred bytes. */
export const MAX_PROJECT_BYTES = 2 * 2 ** 20;

const NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A sandbox project: which repos, how the image is made, what the agent runs, what it may use. */
export const projectSchema = z.strictObject({
  /** Lower-case letters, digits, `.`, `_`, `-`: used in labels and image tags. */
  name: z.string().regex(NAME, "expected a lower-case name of letters, digits, '.', '_' or '-'"),
  repos: z
    .array(
      z.strictObject({
        name: z.string().regex(NAME, "expected a lower-case repo name"),
        /** A local git repository. */
        path: z.string().min(1),
        /** What to check out. @default HEAD */
        ref: z.string().min(1).optional(),
        /** `clone`: a private clone on the session branch; `mount-ro`: the repo bind-mounted read-only. @default "clone" */
        mode: z.enum(["clone", "mount-ro"]).default("clone"),
      }),
    )
    .min(1, "list at least one repo"),
  /** The repo the agent starts in. @default the first repo */
  workdir: z.string().regex(NAME, "expected the name of one of the repos").optional(),
  mounts: z
    .array(
      z.strictObject({
        host: z.string().min(1),
        container: z.string().regex(/^\/[^:]*$/, "expected an absolute container path"),
        readOnly: z.boolean().default(true),
      }),
    )
    .default([]),
  image: z.union([
    z.strictObject({
      files: z.record(z.string(), z.string()),
      dockerfile: z.string().min(1),
      /**
       * The image's own tag, from a maker that content-addresses it (agentImage: agent, version and
       * base), so every project that uses the same image shares one bake.
       * @default `bulkhead-<project name>:<hash of the Dockerfile and the files>`
       */
      tag: z
        .string()
        .regex(
          /^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/,
          "expected a lowercase image name and a tag, e.g. bulkhead-agent-claude-code:2.1.332-0123abcd",
        )
        .optional(),
    }),
    z.strictObject({ dockerfile: z.string().min(1), context: z.string().min(1).optional() }),
    z.strictObject({ existing: z.string().min(1) }),
  ]),
  /** Explicit environment values. */
  env: z.record(z.string().regex(ENV_NAME, "expected an environment variable name"), z.string()).default({}),
  /** Names copied from the host environment; nothing else leaks in. */
  passEnv: z.array(z.string().regex(ENV_NAME, "expected an environment variable name")).default([]),
  agent: z
    .strictObject({
      command: z.array(z.string()).min(1, "list the command and its arguments, e.g. [claude, -p]"),
      env: z.record(z.string().regex(ENV_NAME, "expected an environment variable name"), z.string()).optional(),
    })
    .optional(),
  devices: z
    .strictObject({
      gpus: z.union([z.literal("all"), z.number().int().positive(), z.array(z.string().min(1)).min(1)]).optional(),
      gpuCapabilities: z.array(z.string()).default(["gpu"]),
      gpuRequired: z.boolean().default(true),
      devices: z
        .array(
          z.strictObject({
            hostPath: z.string().regex(/^\//, "expected an absolute path on the host, e.g. /dev/fuse"),
            containerPath: z.string().regex(/^\//, "expected an absolute path in the container, e.g. /dev/fuse").optional(),
            permissions: z
              .string()
              .regex(/^[rwm]{1,3}$/, "expected r, w and/or m, e.g. rwm")
              .default("rwm"),
            required: z.boolean().default(true),
          }),
        )
        .default([]),
    })
    .default({ gpuCapabilities: ["gpu"], gpuRequired: true, devices: [] }),
  resources: z
    .strictObject({
      memoryMb: z.number().int().positive().default(1024),
      cpus: z.number().positive().default(1),
      pids: z.number().int().positive().default(256),
      /**
       * The most host disk the workspace may use, in MiB (clones, the agent's files, job logs).
       * Checked while jobs run and at harvest (`session.assertWithinDisk()`); over it, running
       * jobs are stopped and harvest refuses. @default no limit
       */
      diskMb: z.number().int().positive().optional(),
    })
    .default({ memoryMb: 1024, cpus: 1, pids: 256 }),
  /** `none` (default), `bridge`, or the name of a network; never the host's or another container's. */
  network: z
    .string()
    .min(1)
    .refine((name) => name !== "host" && !name.startsWith("container:"), {
      error: "the host's network, or another container's, would undo the session's network isolation: use none, bridge or a named network",
    })
    .default("none"),
  /** An OCI runtime, e.g. `runsc`, when installed. */
  runtime: z.string().min(1).optional(),
  /** Named opt-outs from the hardened defaults. */
  security: z
    .strictObject({
      writableRoot: z.boolean().default(false),
      user: z
        .string()
        .regex(/^\d+(:\d+)?$/, "expected a numeric uid or uid:gid, e.g. 1000:1000")
        .optional(),
      /** Lets `user` be uid 0 (root inside the container). @default false */
      allowRootUser: z.boolean().default(false),
      /** Lets the session user be in the group that owns the Docker socket. @default false */
      allowEngineSocketGroup: z.boolean().default(false),
    })
    .default({ writableRoot: false, allowRootUser: false, allowEngineSocketGroup: false }),
});

export type ProjectInput = z.input<typeof projectSchema>;
export type Project = z.output<typeof projectSchema> & { configHash: string };

/**
 * Validates a project (an object, or YAML/JSON text) and checks the host before anything is
 * created: repos exist and are git repositories, mount sources exist, names are unique. Every
 * problem is reported at once as an {@link InvalidProjectError}. Paths resolve against `cwd`.
 *
 * @example
 * const project = defineProject({ name: "rate-limit", repos: [{ name: "backend-api", path: "../backend-api" }], image: { existing: "node:20" } });
 */
export function defineProject(input: ProjectInput | string, { cwd = process.cwd() }: { cwd?: string } = {}): Project {
  let raw: unknown = input;
  if (typeof input === "string") {
    const bytes = Buffer.byteLength(input, "utf8");
    if (bytes > MAX_PROJECT_BYTES)
      throw new InvalidProjectError([`the project is ${bytes} bytes, over the ${MAX_PROJECT_BYTES}-byte limit for a project config`]);
    raw = parseProjectText(input);
  }
  const parsed = projectSchema.safeParse(raw);
  if (!parsed.success) throw new InvalidProjectError(projectProblems(parsed.error, raw, projectSchema));
  const project = parsed.data;
  const problems: string[] = [];
  const sockets = engineSockets();
  const names = new Set<string>();
  for (const repo of project.repos) {
    if (names.has(repo.name)) problems.push(`repos: "${repo.name}" is listed twice`);
    names.add(repo.name);
    repo.path = resolve(cwd, repo.path);
    if (!existsSync(repo.path)) problems.push(`repos.${repo.name}: ${repo.path} does not exist`);
    else if (!existsSync(resolve(repo.path, ".git"))) problems.push(`repos.${repo.name}: ${repo.path} is not a git repository (no .git)`);
  }
  if (project.workdir && !names.has(project.workdir))
    problems.push(`workdir: "${project.workdir}" is not one of the repos (${[...names].join(", ")})`);
  for (const mount of project.mounts) {
    mount.host = resolve(cwd, mount.host);
    if (!existsSync(mount.host)) problems.push(`mounts: ${mount.host} does not exist`);
    else socketProblem(`mounts: ${mount.host}`, mount.host, sockets, problems);
  }
  for (const repo of project.repos)
    if (repo.mode === "mount-ro" && existsSync(repo.path)) socketProblem(`repos.${repo.name}: ${repo.path}`, repo.path, sockets, problems);
  for (const device of project.devices.devices) {
    const problem = deviceNodeProblem(device.hostPath);
    if (problem) problems.push(`devices: ${problem}`);
  }
  if (project.security.user !== undefined) {
    const problem = sessionUserProblem(project.security.user, project.security, sockets);
    if (problem) problems.push(problem);
  }
  if ("context" in project.image && project.image.context) {
    project.image.context = resolve(cwd, project.image.context);
    if (!existsSync(project.image.context) || !statSync(project.image.context).isDirectory())
      problems.push(`image.context: ${project.image.context} is not a directory`);
  }
  if ("files" in project.image) {
    for (const [target, source] of Object.entries(project.image.files)) {
      if (isAbsolute(target) || target.split("/").includes(".."))
        problems.push(`image.files: "${target}" must be a relative path inside the build context`);
      const path = resolve(cwd, source);
      if (!existsSync(path)) problems.push(`image.files.${target}: ${path} does not exist`);
      project.image.files[target] = path;
    }
  }
  if (problems.length > 0) throw new InvalidProjectError(problems);
  const configHash = createHash("sha256").update(JSON.stringify(project)).digest("hex").slice(0, 16);
  return { ...project, configHash };
}

/**
 * Reads a project file (YAML or JSON); paths in it resolve against the file's directory. A file
 * over {@link MAX_PROJECT_BYTES} is refused before it is read.
 */
export function loadProject(path: string): Project {
  let text: string;
  let descriptor: number | undefined;
  try {
    descriptor = openSync(path, "r");
    const { size } = fstatSync(descriptor);
    if (size > MAX_PROJECT_BYTES)
      throw new InvalidProjectError([`${path} is ${size} bytes, over the ${MAX_PROJECT_BYTES}-byte limit for a project config`]);
    // One byte more than allowed tells a file that grew since fstat (or is not a regular file).
    const content = readAt(descriptor, 0, MAX_PROJECT_BYTES + 1);
    if (content.length > MAX_PROJECT_BYTES)
      throw new InvalidProjectError([`${path} is over the ${MAX_PROJECT_BYTES}-byte limit for a project config`]);
    text = content.toString("utf8");
  } catch (error) {
    if (InvalidProjectError.isInstance(error)) throw error;
    throw new InvalidProjectError([`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`]);
  } finally {
    if (descriptor !== undefined) closeSync(descriptor);
  }
  return defineProject(text, { cwd: resolve(path, "..") });
}

/**
 * Parses project text in linear time. yaml's own duplicate-key check compares each key with
 * every earlier key of its map (quadratic: a 10 MB map took minutes), so it is off and duplicate
 * keys are found here with one set per map instead.
 */
function parseProjectText(text: string): unknown {
  const document = parseDocument(text, { uniqueKeys: false, prettyErrors: false });
  const problems = document.errors.map((error) => `not valid YAML or JSON: ${error.message.split("\n")[0]}`);
  if (problems.length === 0)
    visit(document, {
      Map(_, map) {
        const seen = new Set<string>();
        for (const pair of map.items) {
          const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
          if (seen.has(key)) problems.push(`not valid YAML or JSON: the key "${key}" is given twice in one map`);
          seen.add(key);
        }
      },
    });
  if (problems.length > 0) throw new InvalidProjectError(problems.slice(0, 20));
  try {
    return document.toJS({ maxAliasCount: 64 });
  } catch (error) {
    throw new InvalidProjectError([`not valid YAML or JSON: ${(error as Error).message.split("\n")[0]}`]);
  }
}

/** Adds a problem when mounting `source` would expose an engine socket (see {@link findEngineSocket}). */
function socketProblem(where: string, source: string, sockets: ReturnType<typeof engineSockets>, problems: string[]): void {
  const found = findEngineSocket(source, sockets);
  if (found === "too-large")
    problems.push(
      `${where} has more than ${MAX_MOUNT_SCAN_ENTRIES} entries and cannot be checked for the Docker socket: mount a narrower directory`,
    );
  else if (found !== undefined)
    problems.push(
      `${where.split(":")[0]}: the Docker socket is never mounted into a session (${source}${found !== source ? ` holds ${found}` : ""})`,
    );
}

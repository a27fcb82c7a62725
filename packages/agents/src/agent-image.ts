import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import { InvalidArgumentError, validateOptions } from "@bulkhead/core";
import { z } from "zod";

const optionsSchema = z.strictObject({
  /** Which agent the image runs. */
  agent: z.enum(["claude-code", "codex"]),
  /** Where the agent's npm packages are installed (resolved like `require` from there). @default process.cwd() */
  from: z.string().min(1).optional(),
  /** A static busybox for `/bin/sh` and the basic tools (Debian: `busybox-static`). @default "/bin/busybox" */
  busybox: z.string().regex(/^\//).default("/bin/busybox"),
  /** Host executables copied in with their shared libraries (e.g. bash for the agents' shell tools). @default ["/bin/bash"] when present */
  extraExecutables: z.array(z.string().regex(/^\//)).optional(),
  /** The uid:gid of the session user, named `agent` in /etc/passwd. @default "1000:1000" */
  user: z
    .string()
    .regex(/^\d+:\d+$/)
    .default("1000:1000"),
});

export type AgentImageOptions = z.input<typeof optionsSchema>;

/** A project's `image` (files + Dockerfile + its content-addressed tag): `buildImage` bakes it once per host. */
export interface AgentImage {
  files: Record<string, string>;
  dockerfile: string;
  /**
   * `bulkhead-agent-<agent>:<version>-<hash>`: the hash covers the Dockerfile (agent, version,
   * session user) and the base (busybox, bash, the shared libraries, byte for byte); the agent's
   * own binaries are named by their npm package, version and size rather than read (hundreds of
   * MB). No project name: every project on the host shares one bake.
   */
  tag: string;
}

/** Shared libraries of a dynamic executable (loader first), as soname → real file; none for a static one. */
function libraries(executable: string): { name: string; path: string }[] {
  let output: string;
  try {
    output = execFileSync("ldd", [executable], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch {
    return []; // ldd fails on a static executable
  }
  if (/statically linked/.test(output)) return [];
  const loader = /^\s*(\/\S*ld-[^\s]*\.so[^\s]*)/m.exec(output)?.[1];
  const found = [...output.matchAll(/=>\s+(\/\S+)/g)].map((match) => match[1]!);
  return [...(loader ? [loader] : []), ...found].map((path) => ({ name: basename(path), path: realpathSync(path) }));
}

function resolvePackage(name: string, from: string): { dir: string; version: string } {
  const require = createRequire(join(from, "package.json"));
  try {
    const manifest = require.resolve(`${name}/package.json`);
    return { dir: dirname(manifest), version: (require(manifest) as { version: string }).version };
  } catch {
    throw new InvalidArgumentError(
      "options.from",
      `${name} is not installed under ${from}: npm install ${name.replace(/-linux-x64$/, "")} (it brings ${name} on linux-x64)`,
    );
  }
}

/**
 * An offline image for an agent CLI, from files only (no registry, no base image): the native
 * binary its npm package ships (`@anthropic-ai/claude-code-linux-x64`'s `claude`, or Codex's static
 * `codex` and `rg`), a static busybox for `/bin/sh`, bash, the host's shared libraries they link,
 * and `/etc/passwd` naming the session user. Pass it as a project's `image`; `buildImage` bakes it
 * once per host and every project reuses it: its tag is content-addressed by agent, version and
 * base, with no project name in it.
 *
 * @example
 * const project = defineProject({ name: "api", repos, image: agentImage({ agent: "claude-code" }) });
 */
export function agentImage(options: AgentImageOptions): AgentImage {
  const { agent, from = process.cwd(), busybox, extraExecutables, user } = validateOptions(optionsSchema, options, "options");
  if (!existsSync(busybox))
    throw new InvalidArgumentError("options.busybox", `no static busybox at ${busybox}: apt-get install busybox-static`);
  const files: Record<string, string> = { "rootfs/bin/busybox": busybox };
  // The agent's binaries, which its npm package and version identify (not hashed: ~200 MB each).
  const binaries: { source: string; target: string; fromPackage?: string }[] = [];
  let version: string;
  // The agents' executables are on PATH under their own names: `claude`, `codex`.
  let executable: string;
  if (agent === "claude-code") {
    const found = resolvePackage("@anthropic-ai/claude-code-linux-x64", from);
    version = found.version;
    executable = "/usr/local/bin/claude";
    binaries.push({ source: join(found.dir, "claude"), target: executable, fromPackage: `@anthropic-ai/claude-code-linux-x64@${version}` });
  } else {
    const found = resolvePackage("@openai/codex-linux-x64", from);
    version = found.version;
    executable = "/usr/local/bin/codex";
    const vendor = join(found.dir, "vendor", "x86_64-unknown-linux-musl");
    const fromPackage = `@openai/codex-linux-x64@${version}`;
    binaries.push(
      { source: join(vendor, "bin", "codex"), target: executable, fromPackage },
      { source: join(vendor, "codex-path", "rg"), target: "/usr/local/bin/rg", fromPackage },
    );
  }
  for (const path of extraExecutables ?? (existsSync("/bin/bash") ? ["/bin/bash"] : []))
    binaries.push({ source: realpathSync(path), target: `/usr/bin/${basename(path)}` });
  const libs = new Map<string, string>();
  for (const binary of binaries) {
    if (!existsSync(binary.source))
      throw new InvalidArgumentError("options", `${binary.source} is missing: reinstall the agent's npm package`);
    files[`rootfs${binary.target}`] = binary.source;
    for (const library of libraries(binary.source)) libs.set(library.name, library.path);
  }
  for (const [name, path] of libs) {
    // The loader where the binaries ask for it; the libraries where it looks by default.
    if (name.startsWith("ld-linux")) files[`rootfs/lib64/${name}`] = path;
    else files[`rootfs/lib/x86_64-linux-gnu/${name}`] = path;
  }
  const [uid, gid] = user.split(":");
  const dockerfile = [
    "FROM scratch",
    "COPY rootfs/ /",
    'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
    // The session user by name (tools look it up), home in /tmp; /tmp is a tmpfs in a session.
    `RUN ["/bin/sh", "-c", "mkdir -p /etc /tmp /root && chmod 1777 /tmp && printf 'root:x:0:0:root:/root:/bin/sh\\\\nagent:x:${uid}:${gid}:agent:/tmp:/bin/sh\\\\n' > /etc/passwd && printf 'root:x:0:\\\\nagent:x:${gid}:\\\\n' > /etc/group"]`,
    "ENV PATH=/usr/local/bin:/usr/bin:/bin SHELL=/bin/sh",
    `LABEL dev.bulkhead.agent=${agent} dev.bulkhead.agent-version=${version}`,
    'CMD ["/bin/sh"]',
    "",
  ].join("\n");
  const packaged = new Map(binaries.filter((binary) => binary.fromPackage).map((binary) => [`rootfs${binary.target}`, binary]));
  const hash = createHash("sha256").update(dockerfile);
  for (const [target, source] of Object.entries(files).sort(([left], [right]) => (left < right ? -1 : 1))) {
    const stat = statSync(source);
    const mode = stat.mode & 0o111 ? "x" : "-";
    const from = packaged.get(target)?.fromPackage;
    hash.update(`\0${target}\0${mode}\0`);
    if (from) hash.update(`${from}\0${stat.size}`);
    else hash.update(readFileSync(source));
  }
  const tag = `bulkhead-agent-${agent}:${version}-${hash.digest("hex").slice(0, 16)}`;
  return { files, dockerfile, tag };
}

// Makes sure a Docker engine is reachable, installing and starting one when we are root on
// Debian. Plain Node with no dependencies: it runs before `npm ci`.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, openSync, readFileSync } from "node:fs";

const HOW_TO_GET_ONE =
  "No Docker engine is reachable: start one (or run this as root on Debian, where bulkhead installs docker.io and starts dockerd for you), then run the command again.";

/** True when `docker info` answers. */
export function isEngineReachable() {
  const result = spawnSync("docker", ["info", "--format", "{{.ServerVersion}}"], { encoding: "utf8", timeout: 20_000 });
  return result.status === 0;
}

function isRoot() {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

function isDebian() {
  return existsSync("/etc/debian_version");
}

/** True when the file is an ELF executable without an interpreter (statically linked). */
export function isStaticElf(path) {
  let bytes;
  try {
    bytes = readFileSync(path);
  } catch {
    return false;
  }
  if (bytes.length < 64 || bytes.readUInt32BE(0) !== 0x7f454c46 || bytes[4] !== 2) return false;
  const programHeaders = Number(bytes.readBigUInt64LE(0x20));
  const entrySize = bytes.readUInt16LE(0x36);
  const count = bytes.readUInt16LE(0x38);
  for (let index = 0; index < count; index++) {
    if (bytes.readUInt32LE(programHeaders + index * entrySize) === 3) return false; // PT_INTERP
  }
  return true;
}

/** The static busybox that offline test images are built from. */
export const BUSYBOX_PATH = "/bin/busybox";

export function aptInstall(packages, log) {
  log(`installing ${packages.join(", ")} with apt-get`);
  const environment = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  for (const args of [
    ["update", "-qq"],
    ["install", "-y", "-qq", ...packages],
  ]) {
    const result = spawnSync("apt-get", args, { stdio: ["ignore", "ignore", "inherit"], env: environment });
    if (result.status !== 0)
      throw new Error(
        `apt-get ${args[0]} failed (exit ${result.status}): install ${packages.join(", ")} by hand, then run the command again.`,
      );
  }
}

async function waitFor(check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return false;
}

/**
 * Ensures a reachable engine and a static busybox. Returns `stop()`, which stops the engine
 * only when this call started it.
 */
export async function ensureDockerEngine({ log = (message) => console.error(`[bulkhead] ${message}`) } = {}) {
  const missing = [];
  if (!isStaticElf(BUSYBOX_PATH)) missing.push("busybox-static");
  const reachable = isEngineReachable();
  if (!reachable && !existsSync("/usr/sbin/dockerd") && !existsSync("/usr/bin/dockerd")) missing.push("docker.io");
  if (missing.length > 0) {
    if (!isRoot() || !isDebian()) {
      throw new Error(
        reachable
          ? `A static busybox is missing at ${BUSYBOX_PATH}: install Debian's busybox-static, then run the command again.`
          : HOW_TO_GET_ONE,
      );
    }
    aptInstall(missing, log);
  }
  if (reachable) return { started: false, stop: async () => {} };
  if (!isRoot()) throw new Error(HOW_TO_GET_ONE);

  const daemon = await startDaemon(log);
  return {
    started: true,
    async stop() {
      // The daemon running now, which may not be the one started here (restartEngine).
      const pid = daemonPid() ?? daemon.pid;
      if (pid === undefined || !isAlive(pid)) return;
      log("stopping the Docker engine this run started");
      process.kill(pid, "SIGTERM");
      if (!(await waitFor(() => !isAlive(pid), 30_000))) process.kill(pid, "SIGKILL");
    },
  };
}

const PID_FILE = "/var/run/docker.pid";
const LOG_FILE = "/tmp/bulkhead-dockerd.log";

function daemonPid() {
  try {
    return Number(readFileSync(PID_FILE, "utf8").trim()) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether the process runs. A daemon that exited but was not reaped yet is a zombie, which
 * kill(pid, 0) still finds: its parent (the script that started it) may be blocked in a
 * synchronous child process and cannot reap it until that ends.
 */
function isAlive(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true;
  }
}

/** Starts `dockerd` detached and waits for `docker info`; the daemon outlives this process. */
async function startDaemon(log) {
  log(`starting dockerd in the background (log: ${LOG_FILE})`);
  const output = openSync(LOG_FILE, "a");
  const daemon = spawn("dockerd", [], { detached: true, stdio: ["ignore", output, output] });
  daemon.unref();
  let exited = false;
  daemon.on("exit", () => {
    exited = true;
  });
  if (!(await waitFor(() => exited || isEngineReachable(), 60_000)) || exited) {
    if (!exited) daemon.kill("SIGTERM");
    throw new Error(`dockerd did not become ready within 60 s: see ${LOG_FILE}.`);
  }
  log(`Docker engine ready (pid ${daemon.pid})`);
  return daemon;
}

/**
 * Stops the running `dockerd` (SIGTERM, as a service manager would) and starts it again, for the
 * engine-restart test. Root only; every container stops with the daemon.
 */
export async function restartEngine({ log = (message) => console.error(`[bulkhead] ${message}`) } = {}) {
  if (!isRoot()) throw new Error("restarting the Docker engine needs root");
  const pid = daemonPid();
  if (pid === undefined || !isAlive(pid)) throw new Error(`no running dockerd found through ${PID_FILE}`);
  log(`stopping dockerd (pid ${pid})`);
  process.kill(pid, "SIGTERM");
  if (!(await waitFor(() => !isAlive(pid), 60_000))) throw new Error(`dockerd (pid ${pid}) did not stop within 60 s`);
  await startDaemon(log);
}

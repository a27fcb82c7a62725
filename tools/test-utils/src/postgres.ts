import { spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The unprivileged user a private cluster runs as when the tests run as root (postgres refuses root). */
export const POSTGRES_TEST_USER = "bulkhead-pg";

/** A private PostgreSQL server started by a test: its own data directory, a unix socket in it, no TCP. */
export interface TestPostgres {
  /** A connection string for `pg` (`postgresql://bulkhead@/bulkhead?host=<socket dir>`). */
  readonly url: string;
  /** The directory that holds the socket (`host` for `pg`). */
  readonly socketDir: string;
  readonly database: string;
  readonly user: string;
  /** Stops the server and keeps the data: `start()` brings it back (a database outage in a test). */
  stopServer(): void;
  /** Starts a server stopped with `stopServer()`, on the same socket and data. */
  start(): void;
  /** Stops the server and removes its directory. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The directory with initdb, pg_ctl and postgres: `BULKHEAD_PG_BIN`, or Debian's newest install. */
export function findPostgresBin(): string {
  if (process.env.BULKHEAD_PG_BIN) return process.env.BULKHEAD_PG_BIN;
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((name) => existsSync(join(root, name, "bin", "initdb")))
        .sort((left, right) => Number(right) - Number(left))
    : [];
  if (versions.length === 0)
    throw new Error(
      "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin: install Debian's postgresql package (npm test does it as root) or set BULKHEAD_PG_BIN",
    );
  return join(root, versions[0]!, "bin");
}

function ids(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  let found = spawnSync("id", ["-u", POSTGRES_TEST_USER], { encoding: "utf8" });
  if (found.status !== 0) {
    // A system user with no home and no shell: it only owns the test clusters.
    const made = spawnSync("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", POSTGRES_TEST_USER], {
      encoding: "utf8",
    });
    if (made.status !== 0 && !/already exists/.test(made.stderr)) throw new Error(`useradd ${POSTGRES_TEST_USER} failed: ${made.stderr}`);
    found = spawnSync("id", ["-u", POSTGRES_TEST_USER], { encoding: "utf8" });
  }
  const gid = spawnSync("id", ["-g", POSTGRES_TEST_USER], { encoding: "utf8" });
  return { uid: Number(found.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

function run(bin: string, args: string[], owner: { uid: number; gid: number } | undefined): void {
  const result = spawnSync(bin, args, { encoding: "utf8", ...(owner ?? {}), env: { ...process.env, LC_ALL: "C" } });
  if (result.status !== 0) throw new Error(`${bin} ${args.join(" ")} failed (exit ${result.status}): ${result.stderr}${result.stdout}`);
}

/**
 * Starts a private PostgreSQL cluster in a temporary directory, as an unprivileged user when
 * this runs as root, listening only on a unix socket inside that directory. fsync is off: the
 * data is thrown away at the end, and durability is PostgreSQL's to test, not ours.
 *
 * @example
 * await using postgres = await startTestPostgres();
 * const pool = new pg.Pool({ connectionString: postgres.url });
 */
export async function startTestPostgres({
  maxConnections = 200,
  durable = false,
}: {
  maxConnections?: number;
  /** Keep fsync and synchronous commit on, as a production server runs (the bench does). @default false */
  durable?: boolean;
} = {}): Promise<TestPostgres> {
  const bin = findPostgresBin();
  const owner = ids();
  const root = mkdtempSync(join(tmpdir(), "bulkhead-pg-"));
  if (owner) chownSync(root, owner.uid, owner.gid);
  const data = join(root, "data");
  const user = "bulkhead";
  const database = "bulkhead";
  run(join(bin, "initdb"), ["-D", data, "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"], owner);
  const options = [
    `-k ${root}`,
    "-c listen_addresses=''",
    `-c max_connections=${maxConnections}`,
    ...(durable ? [] : ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]),
  ].join(" ");
  const ctl = (action: "start" | "stop") =>
    run(
      join(bin, "pg_ctl"),
      action === "start"
        ? ["-D", data, "-o", options, "-l", join(root, "server.log"), "-w", "start"]
        : ["-D", data, "-m", "fast", "-w", "stop"],
      owner,
    );
  let running = false;
  const start = () => {
    if (running) return;
    ctl("start");
    running = true;
  };
  const stopServer = () => {
    if (!running) return;
    ctl("stop");
    running = false;
  };
  start();
  run(join(bin, "createdb"), ["-h", root, "-U", user, database], owner);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      stopServer();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  };
  return {
    url: `postgresql://${user}@/${database}?host=${encodeURIComponent(root)}`,
    socketDir: root,
    database,
    user,
    stopServer,
    start,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

// Makes sure PostgreSQL's server binaries are installed for the tests that start a private
// cluster (tools/test-utils/src/postgres.ts), installing Debian's postgresql package when we are
// root on Debian. Plain Node with no dependencies: it runs before `npm ci`. It starts nothing:
// each test starts and stops its own server.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { aptInstall } from "./docker-engine.mjs";

const ROOT = "/usr/lib/postgresql";

/** True when some /usr/lib/postgresql/<version>/bin has initdb and pg_ctl (or BULKHEAD_PG_BIN is set). */
export function hasPostgresBinaries() {
  if (process.env.BULKHEAD_PG_BIN) return existsSync(join(process.env.BULKHEAD_PG_BIN, "initdb"));
  if (!existsSync(ROOT)) return false;
  return readdirSync(ROOT).some(
    (version) => existsSync(join(ROOT, version, "bin", "initdb")) && existsSync(join(ROOT, version, "bin", "pg_ctl")),
  );
}

/** Installs Debian's `postgresql` when the binaries are missing; throws with what to do otherwise. */
export function ensurePostgres({ log = (message) => console.error(`[bulkhead] ${message}`) } = {}) {
  if (hasPostgresBinaries()) return;
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  if (!root || !existsSync("/etc/debian_version"))
    throw new Error(
      "PostgreSQL's server binaries are missing (no /usr/lib/postgresql/*/bin/initdb): install the postgresql package, or set BULKHEAD_PG_BIN to its bin directory, then run the command again.",
    );
  aptInstall(["postgresql"], log);
  if (!hasPostgresBinaries()) throw new Error("apt-get installed postgresql, but /usr/lib/postgresql/*/bin/initdb is still missing");
}

import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { InvalidArgumentError } from "./invalid-argument-error.js";
import { withFileLock } from "./with-file-lock.js";
import { writeFileAtomic } from "./write-file-atomic.js";

/** Which host and which engine hold a session, so any host can list the team's sessions and their owners. */
export interface SessionRecord {
  id: string;
  /** The host that created it and controls it (its hostname, or a name you choose). */
  host: string;
  /** The engine it runs on: `docker://unix:///var/run/docker.sock`, a remote engine, a cluster. */
  engine: string;
  project?: string;
  state: "running" | "stopped" | "removed";
  /** ms since the epoch. */
  createdAt: number;
  updatedAt: number;
}

/**
 * Where session ownership is recorded: a directory on one host, PostgreSQL for a team
 * (@bulkhead/postgres). `claim` is atomic: of two hosts registering one id, one wins.
 */
export interface SessionRegistry {
  /** Records a new session; refused (`InvalidArgumentError`) when another host already holds that id. */
  register(record: Omit<SessionRecord, "createdAt" | "updatedAt">): Promise<SessionRecord>;
  /** Changes a session's state; only its own host may (`host` must match). */
  update(id: string, change: { host: string; state: SessionRecord["state"] }): Promise<SessionRecord>;
  get(id: string): Promise<SessionRecord | undefined>;
  /** Every session, by id; `host` narrows to one host's. */
  list(filter?: { host?: string }): Promise<SessionRecord[]>;
  /** Forgets a session; only its own host may. */
  remove(id: string, options: { host: string }): Promise<void>;
  close?(): Promise<void>;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Checks a session record's fields, for every registry. */
export function checkSessionRecord(record: Omit<SessionRecord, "createdAt" | "updatedAt">): void {
  if (typeof record !== "object" || record === null) throw new InvalidArgumentError("record", "expected { id, host, engine, state }");
  if (!ID.test(String(record.id))) throw new InvalidArgumentError("record.id", `"${record.id}" is not a session id`);
  for (const field of ["host", "engine"] as const)
    if (typeof record[field] !== "string" || record[field] === "")
      throw new InvalidArgumentError(`record.${field}`, `expected the session's ${field}`);
  if (!["running", "stopped", "removed"].includes(record.state))
    throw new InvalidArgumentError("record.state", `expected running, stopped or removed, got ${JSON.stringify(record.state)}`);
}

/** The error for a change from another host than the session's own. */
export const sessionOwnerError = (id: string, owner: string, host: string): InvalidArgumentError =>
  new InvalidArgumentError("host", `session "${id}" belongs to host ${owner}, not ${host}: change it from its own host`);

/**
 * A session registry of one JSON file per session in `directory`, for the processes of one host.
 * Every change holds a lock beside the records; for several hosts use PostgreSQL.
 *
 * @example
 * const registry = createFileSessionRegistry(join(home, "registry"));
 * await registry.register({ id: "s1", host: hostname(), engine: "docker://local", state: "running" });
 */
export function createFileSessionRegistry(directory: string, { now = Date.now }: { now?: () => number } = {}): SessionRegistry {
  if (typeof directory !== "string" || directory === "") throw new InvalidArgumentError("directory", "expected the registry's directory");
  const fileOf = (id: string) => {
    if (!ID.test(String(id))) throw new InvalidArgumentError("id", `"${id}" is not a session id`);
    return join(directory, `${id}.json`);
  };
  const read = async (id: string): Promise<SessionRecord | undefined> => {
    const text = await readFile(fileOf(id), "utf8").catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return undefined;
      throw error;
    });
    return text === undefined ? undefined : (JSON.parse(text) as SessionRecord);
  };
  // One host: the processes of it serialize through the file lock of each change.
  const locked = async <TResult>(work: () => Promise<TResult>) => {
    await mkdir(directory, { recursive: true });
    return withFileLock(join(directory, ".lock"), work);
  };
  return {
    register: (record) =>
      locked(async () => {
        checkSessionRecord(record);
        const held = await read(record.id);
        if (held && held.state !== "removed")
          throw new InvalidArgumentError("record.id", `session "${record.id}" is already registered by host ${held.host}`);
        const at = now();
        const stored: SessionRecord = { ...record, createdAt: at, updatedAt: at };
        await writeFileAtomic(fileOf(record.id), JSON.stringify(stored));
        return stored;
      }),
    update: (id, { host, state }) =>
      locked(async () => {
        const held = await read(id);
        if (!held) throw new InvalidArgumentError("id", `no session "${id}" in the registry`);
        if (held.host !== host) throw sessionOwnerError(id, held.host, host);
        const stored: SessionRecord = { ...held, state, updatedAt: now() };
        checkSessionRecord(stored);
        await writeFileAtomic(fileOf(id), JSON.stringify(stored));
        return stored;
      }),
    get: read,
    async list({ host } = {}) {
      const names = await readdir(directory).catch(() => [] as string[]);
      const records = await Promise.all(names.filter((name) => name.endsWith(".json")).map((name) => read(name.slice(0, -5))));
      return records
        .filter((record): record is SessionRecord => record !== undefined && (host === undefined || record.host === host))
        .sort((left, right) => (left.id < right.id ? -1 : left.id > right.id ? 1 : 0));
    },
    remove: (id, { host }) =>
      locked(async () => {
        const held = await read(id);
        if (!held) return;
        if (held.host !== host) throw sessionOwnerError(id, held.host, host);
        await rm(fileOf(id), { force: true });
      }),
  };
}

import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { InvalidArgumentError } from "./invalid-argument-error.js";
import { proposalSchema, type Proposal, type ProposalStatus } from "./proposal.js";
import { withFileLock } from "./with-file-lock.js";
import { writeFileAtomic } from "./write-file-atomic.js";

/**
 * Where a {@link MultiRepoGuard} keeps its proposals. `update` is a compare-and-set: it runs
 * `change` on the current record and stores the result, with no other update in between.
 */
export interface ProposalStore {
  create(proposal: Proposal): Promise<void>;
  get(id: string): Promise<Proposal | undefined>;
  list(filter?: { status?: ProposalStatus }): Promise<Proposal[]>;
  update(id: string, change: (current: Proposal | undefined) => Proposal): Promise<Proposal>;
  /** Runs `work` so that no other writer of this store runs at the same time. */
  exclusive<TResult>(work: () => Promise<TResult>): Promise<TResult>;
}

const byCreation = (left: Proposal, right: Proposal) => left.createdAt.localeCompare(right.createdAt) || left.id.localeCompare(right.id);

/** A store that lives in memory: for tests and one-shot scripts. */
export function createMemoryProposalStore(): ProposalStore {
  const records = new Map<string, Proposal>();
  let tail: Promise<unknown> = Promise.resolve();
  const exclusive = <TResult>(work: () => Promise<TResult>): Promise<TResult> => {
    const run = tail.then(work, work);
    tail = run.catch(() => undefined);
    return run;
  };
  return {
    create: async (proposal) => void records.set(proposal.id, structuredClone(proposal)),
    get: async (id) => structuredClone(records.get(id)),
    list: async ({ status } = {}) =>
      [...records.values()]
        .filter((record) => !status || record.status === status)
        .map((record) => structuredClone(record))
        .sort(byCreation),
    update: async (id, change) => {
      const next = change(structuredClone(records.get(id)));
      records.set(id, structuredClone(next));
      return next;
    },
    exclusive,
  };
}

const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * A store of one JSON file per proposal in `directory`, safe for several processes: each write is
 * a temporary file renamed into place, and updates hold a lock directory beside the records.
 *
 * @example
 * const guard = createMultiRepoGuard({ primaryRepo: "backend-api", store: createFileProposalStore(".bulkhead/proposals") });
 */
export function createFileProposalStore(directory: string): ProposalStore {
  if (typeof directory !== "string" || directory === "")
    throw new InvalidArgumentError("directory", "expected the directory to keep proposals in");
  const fileOf = (id: string) => {
    if (!ID_PATTERN.test(id)) throw new InvalidArgumentError("id", `"${id}" is not a proposal id`);
    return join(directory, `${id}.json`);
  };
  const read = async (id: string): Promise<Proposal | undefined> => {
    const text = await readFile(fileOf(id), "utf8").catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return undefined;
      throw error;
    });
    return text === undefined ? undefined : proposalSchema.parse(JSON.parse(text));
  };
  const exclusive = <TResult>(work: () => Promise<TResult>) => withFileLock(join(directory, ".lock"), work);
  return {
    create: (proposal) => writeFileAtomic(fileOf(proposal.id), `${JSON.stringify(proposal, null, 2)}\n`),
    get: read,
    async list({ status } = {}) {
      const names = await readdir(directory).catch((error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT") return [] as string[];
        throw error;
      });
      const records = await Promise.all(names.filter((name) => name.endsWith(".json")).map((name) => read(name.slice(0, -".json".length))));
      return records.filter((record): record is Proposal => record !== undefined && (!status || record.status === status)).sort(byCreation);
    },
    update: (id, change) =>
      exclusive(async () => {
        const next = change(await read(id));
        await writeFileAtomic(fileOf(id), `${JSON.stringify(next, null, 2)}\n`);
        return next;
      }),
    exclusive,
  };
}

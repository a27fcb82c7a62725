import { ClaimRefusedError, InvalidArgumentError, type Claim, type HookTask, type WorkHookStore } from "@bulkhead/core";
import { connectPostgres, ROLLBACK, type PostgresStoreOptions } from "./postgres-connection.js";

const NOW_MS = "(extract(epoch from clock_timestamp()) * 1000)::bigint";
const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

const ddl = (schema: string) => `
CREATE SEQUENCE IF NOT EXISTS ${schema}.hook_fence;
CREATE TABLE IF NOT EXISTS ${schema}.hook_tasks (
  id text PRIMARY KEY,
  depends_on text[] NOT NULL,
  payload jsonb,
  state text NOT NULL DEFAULT 'open',
  attempts integer NOT NULL DEFAULT 0,
  result jsonb,
  reason text,
  claim_worker text,
  claim_token bigint,
  claim_expires_at bigint
);
CREATE INDEX IF NOT EXISTS hook_tasks_open ON ${schema}.hook_tasks (id COLLATE "C") WHERE state = 'open';`;

interface TaskRow {
  id: string;
  depends_on: string[];
  payload: unknown;
  state: HookTask["state"];
  attempts: number;
  result: unknown;
  reason: string | null;
  claim_worker: string | null;
  claim_token: string | null;
  claim_expires_at: string | null;
}

const toTask = (row: TaskRow): HookTask => ({
  id: row.id,
  dependsOn: row.depends_on,
  ...(row.payload === null ? {} : { payload: row.payload }),
  state: row.state,
  attempts: row.attempts,
  ...(row.result === null ? {} : { result: row.result }),
  ...(row.reason === null ? {} : { reason: row.reason }),
});
const toClaim = (row: Pick<TaskRow, "id" | "claim_worker" | "claim_token" | "claim_expires_at">): Claim => ({
  taskId: row.id,
  worker: row.claim_worker!,
  token: row.claim_token!,
  fence: Number(row.claim_token),
  expiresAt: Number(row.claim_expires_at),
});

/**
 * A {@link WorkHookStore} on PostgreSQL: the backlog of a team whose workers run on several hosts.
 * A claim is one `UPDATE` that takes the task only while it is open, ready and unheld (or its
 * holder's lease ran out), and stamps it with the next value of a sequence: the fencing token.
 * `claimNext` picks with `FOR UPDATE SKIP LOCKED`, so concurrent workers get different tasks
 * without waiting on each other. `renew`, `complete`, `fail` and `release` check the token and
 * the expiry in the same statement as the change, so a holder whose claim expired and was taken
 * over is refused (`ClaimRefusedError`), never half-applied. Pass it to `createWorkHook({ store })`
 * of @bulkhead/git-lead, which checks the tasks (ids, cycles) before they reach the store.
 *
 * @example
 * const hook = createWorkHook({ store: createPostgresWorkHookStore({ connectionString: process.env.BULKHEAD_STORE }) });
 * const claim = await hook.claimNext({ worker: "ci-runner-3" });
 */
export function createPostgresWorkHookStore(options: PostgresStoreOptions & { defaultTtlMs?: number }): WorkHookStore {
  const { defaultTtlMs = 600_000 } = options;
  if (!(defaultTtlMs > 0)) throw new InvalidArgumentError("options.defaultTtlMs", `expected a positive duration, got ${defaultTtlMs}`);
  const db = connectPostgres("postgres work-hook", options, ddl, ["hook_fence", "hook_tasks", "hook_tasks_open"]);
  const tasks = `${db.schema}.hook_tasks`;
  const fence = `${db.schema}.hook_fence`;
  const ready = `t.state = 'open' AND (t.claim_token IS NULL OR t.claim_expires_at <= ${NOW_MS})
    AND NOT EXISTS (SELECT 1 FROM unnest(t.depends_on) AS d(id) LEFT JOIN ${tasks} AS dep ON dep.id = d.id
                    WHERE dep.state IS DISTINCT FROM 'complete')`;
  const take = (worker: number, ttlMs: number) =>
    `claim_worker = $${worker}, claim_token = nextval('${fence}'), claim_expires_at = ${NOW_MS} + $${ttlMs}::bigint`;
  const ttl = (value: number | undefined) => {
    const ms = value ?? defaultTtlMs;
    if (!(typeof ms === "number" && ms > 0 && Number.isFinite(ms)))
      throw new InvalidArgumentError("options.ttlMs", `expected a positive duration, got ${ms}`);
    return Math.ceil(ms);
  };
  const checkClaim = (claim: Claim) => {
    if (typeof claim !== "object" || claim === null || typeof claim.taskId !== "string" || !/^\d+$/.test(String(claim.token)))
      throw new ClaimRefusedError(`not a claim of this hook: ${JSON.stringify(claim)}`, {});
  };

  /** Says why a claim-checked change matched no row: taken over, expired, or gone. */
  const refusal = async (claim: Claim): Promise<ClaimRefusedError> => {
    const { rows } = await db.query<TaskRow & { now: string }>(
      "explain a refused claim",
      `SELECT *, ${NOW_MS} AS now FROM ${tasks} WHERE id = $1`,
      [claim.taskId],
    );
    const row = rows[0];
    if (row && row.claim_token === String(claim.token) && Number(row.claim_expires_at) <= Number(row.now))
      return new ClaimRefusedError(`${claim.worker}'s claim on ${claim.taskId} expired: renew claims before they run out`, {
        taskId: claim.taskId,
      });
    return new ClaimRefusedError(`${claim.worker} no longer holds ${claim.taskId}: its claim expired and was taken, or was released`, {
      taskId: claim.taskId,
      ...(row?.claim_worker ? { holder: row.claim_worker } : {}),
    });
  };
  /** Runs a change that holds only for the current, unexpired claim (the fencing check is in the statement). */
  const fenced = async (operation: string, claim: Claim, set: string, values: unknown[] = []): Promise<TaskRow> => {
    checkClaim(claim);
    const { rows } = await db.query<TaskRow>(
      operation,
      `UPDATE ${tasks} SET ${set} WHERE id = $1 AND state = 'open' AND claim_token = $2::bigint AND claim_expires_at > ${NOW_MS} RETURNING *`,
      [claim.taskId, claim.token, ...values],
    );
    if (!rows[0]) throw await refusal(claim);
    return rows[0];
  };
  const clear = "claim_worker = NULL, claim_token = NULL, claim_expires_at = NULL";

  return {
    async add(list) {
      if (!Array.isArray(list)) throw new InvalidArgumentError("tasks", "expected an array of { id, dependsOn?, payload? }");
      for (const task of list)
        if (!ID.test(String(task?.id))) throw new InvalidArgumentError("tasks", `"${task?.id}" is not a usable task id`);
      const added = await db.transaction("add tasks", async (client) => {
        for (const task of list) {
          const { rowCount } = await client.query(
            `INSERT INTO ${tasks} (id, depends_on, payload) VALUES ($1, $2::text[], $3::jsonb) ON CONFLICT (id) DO NOTHING`,
            [task.id, [...(task.dependsOn ?? [])], task.payload === undefined ? null : JSON.stringify(task.payload)],
          );
          if (rowCount !== 1) return ROLLBACK;
        }
        return true;
      });
      if (!added) throw new InvalidArgumentError("tasks", "a task with one of these ids is already on the hook: nothing was added");
    },
    async ready() {
      const { rows } = await db.query<TaskRow>("list ready tasks", `SELECT * FROM ${tasks} AS t WHERE ${ready} ORDER BY id COLLATE "C"`);
      return rows.map(toTask);
    },
    async claim(taskId, worker, { ttlMs } = {}) {
      if (!ID.test(String(taskId)) || typeof worker !== "string" || worker === "")
        throw new InvalidArgumentError("claim", "expected a task id and a worker name");
      const { rows } = await db.query<TaskRow>("claim", `UPDATE ${tasks} AS t SET ${take(2, 3)} WHERE t.id = $1 AND ${ready} RETURNING *`, [
        taskId,
        worker,
        ttl(ttlMs),
      ]);
      if (rows[0]) return toClaim(rows[0]);
      const { rows: found } = await db.query<TaskRow & { now: string }>(
        "explain a refused claim",
        `SELECT *, ${NOW_MS} AS now FROM ${tasks} WHERE id = $1`,
        [taskId],
      );
      const task = found[0];
      if (!task) throw new ClaimRefusedError(`no task "${taskId}" on the hook`, { taskId });
      if (task.state === "open" && task.claim_token !== null && Number(task.claim_expires_at) > Number(task.now))
        throw new ClaimRefusedError(
          `task "${taskId}" is held by ${task.claim_worker} until ${new Date(Number(task.claim_expires_at)).toISOString()}`,
          {
            taskId,
            holder: task.claim_worker,
          },
        );
      throw new ClaimRefusedError(
        `task "${taskId}" is not ready: it is ${task.state}${task.state === "open" ? " and waits for its dependencies" : ""}`,
        { taskId },
      );
    },
    async claimNext(worker, { ttlMs } = {}) {
      if (typeof worker !== "string" || worker === "") throw new InvalidArgumentError("worker", "expected a worker name");
      const { rows } = await db.query<TaskRow>(
        "claim the next task",
        `WITH next AS (SELECT id FROM ${tasks} AS t WHERE ${ready} ORDER BY id COLLATE "C" LIMIT 1 FOR UPDATE SKIP LOCKED)
         UPDATE ${tasks} AS t SET ${take(1, 2)} FROM next WHERE t.id = next.id RETURNING t.*`,
        [worker, ttl(ttlMs)],
      );
      return rows[0] ? toClaim(rows[0]) : undefined;
    },
    async renew(claim, { ttlMs } = {}) {
      return toClaim(await fenced("renew a claim", claim, `claim_expires_at = ${NOW_MS} + $3::bigint`, [ttl(ttlMs)]));
    },
    async complete(claim, { result } = {}) {
      await fenced("complete a task", claim, `state = 'complete', attempts = attempts + 1, result = $3::jsonb, ${clear}`, [
        result === undefined ? null : JSON.stringify(result),
      ]);
    },
    async fail(claim, { reason, final = false }) {
      if (typeof reason !== "string" || reason === "") throw new InvalidArgumentError("options.reason", "say why the task failed");
      await fenced("fail a task", claim, `state = $3, attempts = attempts + 1, reason = $4, ${clear}`, [final ? "failed" : "open", reason]);
    },
    async release(claim) {
      await fenced("release a claim", claim, clear);
    },
    async tasks() {
      const { rows } = await db.query<TaskRow>("list tasks", `SELECT * FROM ${tasks} ORDER BY id COLLATE "C"`);
      return rows.map(toTask);
    },
    close: () => db.close(),
  };
}

import { existsSync } from "node:fs";
import { ok, single, UsageError, type Command, type Flags } from "./command.js";

/** `--ttl 10m`, `90s`, `500ms` or `2h` → milliseconds; wrong usage names the flag. */
export function parseDuration(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match?.[2] ?? "s"]!;
  const value = match ? Math.round(Number(match[1]) * unit) : NaN;
  if (!Number.isSafeInteger(value) || value < 1000 || value > 7 * 24 * 3_600_000)
    throw new UsageError(`--${flag}: expected a duration between 1s and 7 days such as 90s, 10m or 2h, got "${text}"`);
  return value;
}

/** The hook at `dir`; a directory that does not exist is wrong usage (a typo), except for `hook add`, which creates it. */
async function hookAt(dir: string, { create = false } = {}) {
  if (!create && !existsSync(dir))
    throw new UsageError(`<hook-dir>: ${dir} does not exist: create the hook with bulkhead hook add ${dir} <task>`);
  const { createWorkHook } = await import("@bulkhead/git-lead");
  return createWorkHook({ dir });
}

/** The claim a token stands for: the hook checks the token (and the claim's own expiry) against the claim it holds. */
function claimOf(task: string, flags: Flags) {
  const token = single(flags, "token") ?? "";
  if (!/^[0-9a-f]{8,64}$/.test(token)) throw new UsageError(`--token: expected the token hook claim printed, got "${token}"`);
  return { taskId: task, worker: single(flags, "worker") ?? "the holder of this token", token, expiresAt: Number.MAX_SAFE_INTEGER };
}

const until = (expiresAt: number) => new Date(expiresAt).toISOString();

/** `bulkhead hook …`: stock a work hook, and claim, renew, complete, fail or release its tasks. */
export const hookCommands: Record<string, Command> = {
  "hook add": {
    usage: "bulkhead hook add <hook-dir> <task>... [--depends-on <task>]... [--payload <json>]",
    example: "bulkhead hook add .bulkhead/hook routes --depends-on types",
    async run([dir, ...tasks], flags) {
      let payload: unknown;
      const text = single(flags, "payload");
      if (text !== undefined) {
        try {
          payload = JSON.parse(text);
        } catch {
          throw new UsageError(`--payload: expected JSON, got ${JSON.stringify(text.slice(0, 80))}`);
        }
      }
      const dependsOn = ((flags["depends-on"] as string[] | undefined) ?? []).flatMap((value) => value.split(",")).filter(Boolean);
      await using hook = await hookAt(dir!, { create: true });
      await hook.add(tasks.map((id) => ({ id, dependsOn, ...(payload === undefined ? {} : { payload }) })));
      return ok({ added: tasks, dependsOn }, [
        `added ${tasks.join(", ")}${dependsOn.length > 0 ? ` (after ${dependsOn.join(", ")})` : ""}`,
      ]);
    },
  },
  "hook ready": {
    usage: "bulkhead hook ready <hook-dir>",
    example: "bulkhead hook ready .bulkhead/hook --json",
    async run([dir]) {
      await using hook = await hookAt(dir!);
      const ready = await hook.ready();
      return ok(ready, ready.length === 0 ? ["nothing is ready"] : ready.map((task) => task.id));
    },
  },
  "hook claim": {
    usage: "bulkhead hook claim <hook-dir> <task> --worker <name> [--ttl <duration>]",
    example: "bulkhead hook claim .bulkhead/hook types --worker agent-1 --ttl 30m --json",
    async run([dir, task], flags) {
      const ttlMs = parseDuration(single(flags, "ttl"), "ttl");
      await using hook = await hookAt(dir!);
      const claim = await hook.claim({ taskId: task!, worker: single(flags, "worker") ?? "", ...(ttlMs === undefined ? {} : { ttlMs }) });
      return ok(claim, [`${claim.taskId} claimed by ${claim.worker} until ${until(claim.expiresAt)} (token ${claim.token})`]);
    },
  },
  "hook renew": {
    usage: "bulkhead hook renew <hook-dir> <task> --token <token> [--ttl <duration>]",
    example: "bulkhead hook renew .bulkhead/hook types --token 0123abcd --ttl 30m",
    async run([dir, task], flags) {
      const ttlMs = parseDuration(single(flags, "ttl"), "ttl");
      await using hook = await hookAt(dir!);
      const claim = await hook.renew({ claim: claimOf(task!, flags), ...(ttlMs === undefined ? {} : { ttlMs }) });
      return ok(claim, [`${claim.taskId} held until ${until(claim.expiresAt)}`]);
    },
  },
  "hook complete": {
    usage: "bulkhead hook complete <hook-dir> <task> --token <token>",
    example: "bulkhead hook complete .bulkhead/hook types --token 0123abcd",
    async run([dir, task], flags) {
      const claim = claimOf(task!, flags);
      await using hook = await hookAt(dir!);
      await hook.complete({ claim });
      return ok({ completed: task }, [`completed ${task}`]);
    },
  },
  "hook fail": {
    usage: "bulkhead hook fail <hook-dir> <task> --token <token> --reason <text> [--final]",
    example: "bulkhead hook fail .bulkhead/hook types --token 0123abcd --reason 'tests do not pass'",
    async run([dir, task], flags) {
      const reason = single(flags, "reason") ?? "";
      if (reason.trim() === "") throw new UsageError("--reason: say why the task failed");
      const claim = claimOf(task!, flags);
      await using hook = await hookAt(dir!);
      await hook.fail({ claim, reason, final: flags.final === true });
      return ok({ failed: task, final: flags.final === true }, [
        `${task} failed${flags.final === true ? " for good" : ", open for another attempt"}`,
      ]);
    },
  },
  "hook release": {
    usage: "bulkhead hook release <hook-dir> <task> --token <token>",
    example: "bulkhead hook release .bulkhead/hook types --token 0123abcd",
    async run([dir, task], flags) {
      const claim = claimOf(task!, flags);
      await using hook = await hookAt(dir!);
      await hook.release({ claim });
      return ok({ released: task }, [`released ${task}: open again, no attempt counted`]);
    },
  },
};

import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseTaskSpec } from "@bulkhead/core";
import { createTempDir } from "@bulkhead/test-utils";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createWorkHook } from "./create-work-hook.js";
import { findSharedFiles } from "./find-shared-files.js";
import { ClaimRefusedError, InvalidPlanError } from "./git-lead-errors.js";
import { planWaves } from "./plan-waves.js";

const run = promisify(execFile);

/** A small seeded generator (mulberry32), so the random plans are the same on every run. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

describe("findSharedFiles", () => {
  it("reports files two tasks claim, from specs and globs, with a strategy", async () => {
    await using dir = createTempDir();
    dir.write({
      "api/src/routes/index.ts": "x",
      "api/src/routes/user.ts": "x",
      "api/src/types.ts": "x",
      "api/src/middleware/auth.ts": "x",
    });
    const spec = parseTaskSpec(
      JSON.stringify({
        task: "rate limit",
        id: "rate",
        context_scope: { repos: [{ name: "api", paths: ["src/routes/", "src/types.ts"] }], max_files: 10, max_tokens: 1e6 },
        ownership: { primary_repo: "api" },
      }),
    );
    const shared = await findSharedFiles({
      tasks: [
        { id: "rate", spec },
        { id: "auth", repo: "api", files: ["src/middleware/**", "src/routes/index.ts", "src/types.ts", "src/new.ts"] },
        { id: "audit", dependsOn: ["auth"], repo: "api", files: ["src/new.ts"] },
      ],
      repos: { api: join(dir.path, "api") },
    });
    expect(shared).toEqual([
      {
        file: "api/src/new.ts",
        tasks: ["audit", "auth"],
        strategy: "sequence",
        reason: "the tasks already depend on each other: let them change it in that order",
      },
      {
        file: "api/src/routes/index.ts",
        tasks: ["auth", "rate"],
        strategy: "one-owner",
        owner: "auth",
        reason: "give every change to api/src/routes/index.ts to auth, which claims the most shared files",
      },
      {
        file: "api/src/types.ts",
        tasks: ["auth", "rate"],
        strategy: "interface-first",
        reason: "a type or contract file: agree on it in a foundation wave, then let each task work against it",
      },
    ]);
    // The spec's own depends_on counts: the rate task now follows auth, so they are sequenced.
    const after = parseTaskSpec(
      JSON.stringify({
        task: "rate limit",
        id: "rate",
        depends_on: ["auth"],
        context_scope: { repos: [{ name: "api", paths: ["src/routes/index.ts"] }], max_files: 10, max_tokens: 1e6 },
        ownership: { primary_repo: "api" },
      }),
    );
    expect(
      await findSharedFiles({
        tasks: [
          { id: "rate", spec: after },
          { id: "auth", repo: "api", files: ["src/routes/index.ts"] },
        ],
        repos: { api: join(dir.path, "api") },
      }),
    ).toEqual([expect.objectContaining({ file: "api/src/routes/index.ts", strategy: "sequence" })]);
  });
});

describe("planWaves", () => {
  it("puts the foundation first, respects dependencies and the wave size", () => {
    const waves = planWaves({
      tasks: [
        { id: "routes", dependsOn: ["types"], files: ["api/routes.ts"] },
        { id: "types", files: ["api/types.ts", "api/index.ts"] },
        { id: "ui", files: ["web/app.tsx", "api/index.ts"] },
        { id: "docs", files: ["docs/a.md"] },
      ],
      maxPerWave: 2,
    });
    expect(waves).toEqual([
      ["types", "docs"],
      ["ui", "routes"],
    ]);
  });

  it("lands a task the others depend on in the first wave, and takes no more waves than needed", () => {
    // jwt depends on types, refresh on jwt; auth, session and audit fight over api/index.ts, and
    // auth also touches types' file. Shared files first (the old rule) put auth first, so types
    // went to wave 2 and the plan took 4 waves; the critical path puts types first: 3 waves, the
    // lower bound (three tasks claim api/index.ts).
    const waves = planWaves({
      tasks: [
        { id: "auth", files: ["api/index.ts", "api/types.ts"] },
        { id: "session", files: ["api/index.ts"] },
        { id: "audit", files: ["api/index.ts"] },
        { id: "types", files: ["api/types.ts"] },
        { id: "jwt", dependsOn: ["types"], files: ["api/jwt.ts"] },
        { id: "refresh", dependsOn: ["jwt"], files: ["api/refresh.ts"] },
      ],
    });
    expect(waves).toEqual([
      ["types", "audit"],
      ["jwt", "auth"],
      ["session", "refresh"],
    ]);
  });

  it("takes exactly as many waves as the longest chain, on a seeded random plan of 200 tasks", () => {
    // No shared files and no wave size: only dependencies limit the plan, so the minimum is the
    // longest chain, and every task sits in wave (its longest chain of dependencies) + 1.
    const random = seeded(2026);
    const tasks = Array.from({ length: 200 }, (_, index) => ({
      id: `t${String(index).padStart(3, "0")}`,
      dependsOn:
        index === 0
          ? []
          : Array.from({ length: Math.floor(random() * 3) }, () => `t${String(Math.floor(random() * index)).padStart(3, "0")}`),
      files: [`repo/${index}.ts`],
    }));
    const waves = planWaves({ tasks });
    const depth = new Map<string, number>();
    for (const task of tasks) depth.set(task.id, 1 + Math.max(0, ...task.dependsOn.map((dependency) => depth.get(dependency)!)));
    expect(waves.length).toBe(Math.max(...depth.values()));
    const waveOf = new Map(waves.flatMap((wave, index) => wave.map((id) => [id, index] as const)));
    for (const task of tasks) expect(waveOf.get(task.id)).toBe(depth.get(task.id)! - 1);
  });

  it("on a seeded random plan of 200 tasks with shared files: no overlap in a wave, dependencies earlier, near the lower bound", () => {
    const random = seeded(7);
    const pool = Array.from({ length: 60 }, (_, index) => `repo/f${index}.ts`);
    const tasks = Array.from({ length: 200 }, (_, index) => ({
      id: `t${String(index).padStart(3, "0")}`,
      dependsOn:
        index === 0
          ? []
          : Array.from({ length: Math.floor(random() * 2) }, () => `t${String(Math.floor(random() * index)).padStart(3, "0")}`),
      files: [...new Set(Array.from({ length: 1 + Math.floor(random() * 3) }, () => pool[Math.floor(random() * pool.length)]!))],
    }));
    const waves = planWaves({ tasks, maxPerWave: 16 });
    expect(waves.flat().sort()).toEqual(tasks.map((task) => task.id).sort());
    const waveOf = new Map(waves.flatMap((wave, index) => wave.map((id) => [id, index] as const)));
    for (const wave of waves) {
      expect(wave.length).toBeLessThanOrEqual(16);
      const files = wave.flatMap((id) => tasks.find((task) => task.id === id)!.files);
      expect(new Set(files).size).toBe(files.length);
    }
    for (const task of tasks) for (const dependency of task.dependsOn) expect(waveOf.get(dependency)!).toBeLessThan(waveOf.get(task.id)!);
    // Lower bounds: the busiest file needs one wave per task claiming it; the wave size needs 200/16.
    const claims = new Map<string, number>();
    for (const task of tasks) for (const file of task.files) claims.set(file, (claims.get(file) ?? 0) + 1);
    const bound = Math.max(Math.ceil(200 / 16), ...claims.values());
    expect(waves.length).toBeGreaterThanOrEqual(bound);
    expect(waves.length).toBeLessThanOrEqual(Math.ceil(bound * 1.5));
  });

  it("names cycles and unknown dependencies", () => {
    expect(() =>
      planWaves({
        tasks: [
          { id: "a", dependsOn: ["b"], files: [] },
          { id: "b", dependsOn: ["a"], files: [] },
        ],
      }),
    ).toThrow("dependencies form a cycle: a → b → a: break one of these dependencies");
    expect(() => planWaves({ tasks: [{ id: "a", dependsOn: ["z"], files: [] }] })).toThrow(
      'task "a" depends on "z", which is not in the plan',
    );
    expect(() => planWaves({ tasks: [{ id: "", files: [] }] })).toThrow('every task needs an id, got ""');
    expect(() => planWaves({ tasks: [{ id: 7 as unknown as string, files: [] }] })).toThrow("every task needs an id, got 7");
    expect(() =>
      planWaves({
        tasks: [
          { id: "a", files: [] },
          { id: "a", files: [] },
        ],
      }),
    ).toThrow(InvalidPlanError);
  });

  const plans = fc.integer({ min: 1, max: 12 }).chain((count) =>
    fc.tuple(
      ...Array.from({ length: count }, (_, index) =>
        fc.record({
          id: fc.constant(`t${index}`),
          dependsOn: fc.subarray(
            Array.from({ length: index }, (_, earlier) => `t${earlier}`),
            { maxLength: Math.min(3, index) },
          ),
          files: fc.uniqueArray(fc.constantFrom("a.ts", "b.ts", "c.ts", "d.ts", "e.ts", "f.ts", "g.ts"), { maxLength: 3 }),
        }),
      ),
    ),
  );

  it("property: no file overlaps within a wave, dependencies come first, the plan is deterministic", () => {
    fc.assert(
      fc.property(plans, fc.integer({ min: 1, max: 4 }), (tasks, maxPerWave) => {
        const waves = planWaves({ tasks, maxPerWave });
        expect(waves.flat().sort()).toEqual(tasks.map((task) => task.id).sort());
        const waveOf = new Map(waves.flatMap((wave, index) => wave.map((id) => [id, index] as const)));
        for (const wave of waves) {
          expect(wave.length).toBeLessThanOrEqual(maxPerWave);
          const files = wave.flatMap((id) => tasks.find((task) => task.id === id)!.files);
          expect(new Set(files).size).toBe(files.length);
        }
        for (const task of tasks)
          for (const dependency of task.dependsOn) expect(waveOf.get(dependency)!).toBeLessThan(waveOf.get(task.id)!);
        expect(planWaves({ tasks: [...tasks].reverse(), maxPerWave })).toEqual(waves);
        // Foundation first: the plan opens with a task free to start that has the longest chain waiting on it.
        const height = (id: string): number =>
          1 + Math.max(0, ...tasks.filter((task) => task.dependsOn.includes(id)).map((task) => height(task.id)));
        const free = tasks.filter((task) => task.dependsOn.length === 0).map((task) => task.id);
        expect(height(waves[0]![0]!)).toBe(Math.max(...free.map(height)));
        // As few waves as the chains allow when nothing else limits them.
        if (maxPerWave >= tasks.length && tasks.every((task) => task.files.length === 0))
          expect(waves.length).toBe(
            Math.max(
              ...tasks
                .map((task) => task.id)
                .filter((id) => free.includes(id))
                .map(height),
            ),
          );
      }),
      { numRuns: 500 },
    );
  });
});

describe("createWorkHook", () => {
  it("lists ready work, claims atomically, and moves tasks through complete, fail and release", async () => {
    await using dir = createTempDir();
    let clock = 1_000;
    const hook = createWorkHook({ dir: dir.path, now: () => clock });
    await hook.add([{ id: "types" }, { id: "routes", dependsOn: ["types"], payload: { spec: "routes.yaml" } }]);
    await expect(hook.add([{ id: "types" }])).rejects.toThrow("is listed twice");
    expect((await hook.ready()).map((task) => task.id)).toEqual(["types"]);
    await expect(hook.claim({ taskId: "routes", worker: "w1" })).rejects.toThrow(
      'task "routes" is not ready: it is open and waits for its dependencies',
    );
    const claim = await hook.claim({ taskId: "types", worker: "w1", ttlMs: 100 });
    await expect(hook.claim({ taskId: "types", worker: "w2" })).rejects.toThrow(/task "types" is held by w1 until/);
    expect(await hook.ready()).toEqual([]);
    clock += 100;
    const stolen = await hook.claim({ taskId: "types", worker: "w2" });
    await expect(hook.complete({ claim })).rejects.toThrow("w1 no longer holds types");
    await hook.fail({ claim: stolen, reason: "tests failed" });
    expect((await hook.tasks())[1]).toMatchObject({ id: "types", state: "open", attempts: 1, reason: "tests failed" });
    const again = await hook.claim({ taskId: "types", worker: "w3" });
    await hook.complete({ claim: again, result: { sha: "abc" } });
    expect((await hook.ready()).map((task) => task.id)).toEqual(["routes"]);
    const routes = await hook.claim({ taskId: "routes", worker: "w1" });
    const renewed = await hook.renew({ claim: routes, ttlMs: 50 });
    expect(renewed.expiresAt).toBe(clock + 50);
    await hook.release({ claim: renewed });
    expect((await hook.ready()).map((task) => task.id)).toEqual(["routes"]);
    const late = await hook.claim({ taskId: "routes", worker: "w2", ttlMs: 10 });
    clock += 10;
    await expect(hook.renew({ claim: late })).rejects.toThrow("w2's claim on routes expired: renew claims before they run out");
  });

  it("never grants one task twice, across processes", async () => {
    await using dir = createTempDir();
    const hook = createWorkHook({ dir: dir.path });
    await hook.add(Array.from({ length: 40 }, (_, index) => ({ id: `t${index}` })));
    const worker = new URL("../test/hook-worker.ts", import.meta.url).pathname;
    const outputs = await Promise.all(
      Array.from({ length: 4 }, (_, index) =>
        run(process.execPath, ["--import", "tsx", worker, dir.path, `w${index}`], { cwd: join(import.meta.dirname, "..") }),
      ),
    );
    const won = outputs.flatMap((output) => JSON.parse(output.stdout) as string[]);
    expect(won.sort()).toEqual(Array.from({ length: 40 }, (_, index) => `t${index}`).sort());
    // Again over claims that have all expired: replacing an expired claim grants it once too.
    const second = createWorkHook({ dir: join(dir.path, "expired") });
    await second.add(Array.from({ length: 40 }, (_, index) => ({ id: `t${index}` })));
    for (const task of await second.tasks()) await second.claim({ taskId: task.id, worker: "gone", ttlMs: 1 });
    await new Promise((resolve) => setTimeout(resolve, 5));
    const retaken = await Promise.all(
      Array.from({ length: 4 }, (_, index) =>
        run(process.execPath, ["--import", "tsx", worker, join(dir.path, "expired"), `w${index}`], {
          cwd: join(import.meta.dirname, ".."),
        }),
      ),
    );
    expect(retaken.flatMap((output) => JSON.parse(output.stdout) as string[]).sort()).toEqual(
      Array.from({ length: 40 }, (_, index) => `t${index}`).sort(),
    );
  });

  it("property: at most one live claim per task, whatever the interleaving", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(fc.constantFrom("claim", "complete", "release", "tick"), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })),
          { maxLength: 25 },
        ),
        async (steps) => {
          await using dir = createTempDir();
          let clock = 0;
          const hook = createWorkHook({ dir: dir.path, now: () => clock, defaultTtlMs: 50 });
          await hook.add([{ id: "a" }, { id: "b" }, { id: "c" }]);
          const held = new Map<string, { worker: string; claim: Awaited<ReturnType<typeof hook.claim>> }>();
          const completed = new Set<string>();
          for (const [action, task, worker] of steps) {
            const id = ["a", "b", "c"][task]!;
            if (action === "tick") clock += 30;
            if (action === "claim") {
              const live = held.get(id);
              // The model says whether this claim must be granted; a refusal must be a ClaimRefusedError
              // with the reason, so a claim() that always throws (or grants twice) fails the property.
              const grantable = !completed.has(id) && (live === undefined || live.claim.expiresAt <= clock);
              const attempt = await hook.claim({ taskId: id, worker: `w${worker}` }).then(
                (claim) => ({ claim }),
                (error: unknown) => ({ error }),
              );
              if (grantable) {
                expect(attempt).toHaveProperty("claim");
                if ("claim" in attempt) held.set(id, { worker: `w${worker}`, claim: attempt.claim });
              } else {
                expect(attempt).toHaveProperty("error");
                const error = "error" in attempt ? attempt.error : undefined;
                expect(ClaimRefusedError.isInstance(error)).toBe(true);
                expect((error as Error).message).toMatch(completed.has(id) ? /is not ready: it is complete/ : /is held by w\d until/);
              }
            }
            if ((action === "complete" || action === "release") && held.has(id)) {
              const entry = held.get(id)!;
              const ok = await (action === "complete" ? hook.complete({ claim: entry.claim }) : hook.release({ claim: entry.claim })).then(
                () => true,
                () => false,
              );
              expect(ok).toBe(entry.claim.expiresAt > clock);
              if (ok) {
                held.delete(id);
                if (action === "complete") completed.add(id);
              }
            }
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});

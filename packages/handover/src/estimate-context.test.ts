import { symlinkSync } from "node:fs";
import { join } from "node:path";
import { AbortedError, createByteEstimateCounter, PathOutsideRootError } from "@bulkhead/core";
import { createTempDir } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { checkBeforeSpawn } from "./check-before-spawn.js";
import { estimateContext, layerOf } from "./estimate-context.js";
import { suggestSplit } from "./suggest-split.js";

describe("estimateContext", () => {
  it("refuses a negative or fractional count of work", async () => {
    await expect(estimateContext({ edits: -1 }, { contextWindow: 100_000 })).rejects.toThrow("work.edits");
    await expect(estimateContext({ testRuns: 1.5 }, { contextWindow: 100_000 })).rejects.toThrow("work.testRuns");
  });

  it("needs a root only to count files with a counter", async () => {
    const estimate = await estimateContext({ filesToRead: ["src/a.ts"] }, { contextWindow: 100_000 });
    expect(estimate.low).toBeGreaterThan(0);
    await expect(
      estimateContext({ filesToRead: ["src/a.ts"] }, { contextWindow: 100_000, counter: createByteEstimateCounter() }),
    ).rejects.toThrow("options.root");
    // A root without a counter changes nothing: the files cost the table's range, unread.
    await using dir = createTempDir();
    dir.write({ "src/a.ts": "export const a = 1;\n" });
    expect(await estimateContext({ filesToRead: ["src/a.ts"] }, { contextWindow: 100_000, root: dir.path })).toEqual(estimate);
  });

  it("warns from four layers on, and about frontend only beside another layer", async () => {
    const warningsFor = async (filesToRead: string[]) => (await estimateContext({ filesToRead }, { contextWindow: 1_000_000 })).warnings;
    const four = ["src/routes/a.ts", "src/db/b.ts", "src/services/c.ts", "src/domain/d.ts"];
    expect(await warningsFor(four)).toContainEqual(expect.stringContaining("spans 4 layers"));
    expect(await warningsFor(four.slice(0, 3))).toEqual([]);
    expect(await warningsFor(["src/components/a.tsx", "src/pages/b.tsx"])).toEqual([]);
    expect(await warningsFor(["src/components/a.tsx", "src/routes/b.ts"])).toContain(
      "backend and frontend work in one task: give each to its own agent",
    );
  });

  it("sums seed 003's table and applies the 70% rule", async () => {
    const estimate = await estimateContext({ filesToRead: 6, edits: 6, testRuns: 3, gateRuns: 2 }, { contextWindow: 100_000 });
    expect(estimate).toMatchObject({
      low: 3000 + 6000 + 3000 + 6000 + 6000,
      high: 8000 + 24000 + 12000 + 15000 + 16000,
      risk: "plan-continuation",
    });
    expect(estimate.ratio).toBeCloseTo(0.75, 10);
    expect((await estimateContext({ filesToRead: 2, edits: 2 }, { contextWindow: 200_000 })).risk).toBe("ok");
    expect((await estimateContext({ filesToRead: 40, edits: 40, testRuns: 10 }, { contextWindow: 100_000 })).risk).toBe("split");
  });

  it("uses real token counts and raises seed 003's warning signs", async () => {
    await using dir = createTempDir();
    const files = [
      "src/domain/block.rs",
      "src/application/create_block.rs",
      "src/infrastructure/sqlite/repo.rs",
      "src-tauri/commands/page.rs",
      "src-react/components/Insert.tsx",
      "src/a.ts",
      "src/b.ts",
      "src/c.ts",
    ];
    dir.write(Object.fromEntries(files.map((file) => [file, "x".repeat(400)])));
    const estimate = await estimateContext(
      { prompt: "p".repeat(24_000), filesToRead: files, edits: 2 },
      { contextWindow: 200_000, counter: createByteEstimateCounter(), root: dir.path },
    );
    expect(estimate.low).toBe(6000 + 8 * 100 + 1000);
    expect(estimate.layers).toEqual(["domain", "application", "infrastructure", "framework", "frontend"]);
    expect(estimate.warnings).toEqual([
      "the prompt is 6,000 tokens, over 5k: reference files instead of pasting them",
      "the work spans 5 layers (domain, application, infrastructure, framework, frontend): split it before spawning",
      "the agent must read 8 files: point it at the patterns it needs instead",
      "backend and frontend work in one task: give each to its own agent",
    ]);
    await expect(estimateContext({}, { contextWindow: 0 })).rejects.toThrow("invalid options.contextWindow");
    // Paths stay inside root, also through a symlink; counting files needs to know the root.
    const counter = createByteEstimateCounter();
    await expect(estimateContext({ filesToRead: ["../outside.ts"] }, { contextWindow: 1000, counter, root: dir.path })).rejects.toThrow(
      PathOutsideRootError,
    );
    symlinkSync("/etc", join(dir.path, "src", "etc"));
    await expect(estimateContext({ filesToRead: ["src/etc/hostname"] }, { contextWindow: 1000, counter, root: dir.path })).rejects.toThrow(
      "is a symlink that leads outside the root",
    );
    await expect(estimateContext({ filesToRead: ["src/a.ts"] }, { contextWindow: 1000, counter })).rejects.toThrow("pass root");
    expect(layerOf("src/middleware/rateLimit.ts")).toBe("framework");
  });
});

describe("suggestSplit", () => {
  it("groups files by layer into scopes that each fit within 70% of the window", () => {
    const files = [
      ...Array.from({ length: 6 }, (_, index) => ({ path: `src/domain/e${index}.ts`, tokens: 3000 })),
      ...Array.from({ length: 6 }, (_, index) => ({ path: `web/components/C${index}.tsx`, tokens: 3000 })),
      { path: "scripts/build.sh", tokens: 200 },
    ];
    const scopes = suggestSplit({ files }, { contextWindow: 60_000 });
    for (const scope of scopes) expect(scope.high).toBeLessThanOrEqual(42_000);
    expect(scopes.flatMap((scope) => scope.files).sort()).toEqual(files.map((file) => file.path).sort());
    expect(scopes[0]!.name.startsWith("domain")).toBe(true);
    expect(
      scopes.some((scope) => scope.files.some((file) => file.includes("domain")) && scope.files.some((file) => file.endsWith(".tsx"))),
    ).toBe(false);
    expect(scopes.every((scope) => scope.fits)).toBe(true);
    // One file alone over 70% of the window cannot be fitted: it gets its own scope, marked.
    const huge = suggestSplit(
      {
        files: [
          { path: "src/domain/a.ts", tokens: 1000 },
          { path: "src/domain/generated.ts", tokens: 50_000 },
        ],
      },
      {
        contextWindow: 60_000,
      },
    );
    expect(huge.map((scope) => [scope.files, scope.fits])).toEqual([
      [["src/domain/a.ts"], true],
      [["src/domain/generated.ts"], false],
    ]);
  });
});

describe("checkBeforeSpawn", () => {
  it("runs the project's own check and reports whether the partial state is sound", async () => {
    await using dir = createTempDir();
    expect(await checkBeforeSpawn({ command: [process.execPath, "-e", "console.log('0 errors')"], cwd: dir.path })).toMatchObject({
      ok: true,
      exitCode: 0,
      timedOut: false,
      output: "0 errors\n",
    });
    expect(
      await checkBeforeSpawn({
        command: [process.execPath, "-e", "console.error('src/a.ts(1,1): error TS2304'); process.exit(2)"],
        cwd: dir.path,
      }),
    ).toMatchObject({ ok: false, exitCode: 2, output: expect.stringContaining("TS2304") });
    expect(
      await checkBeforeSpawn({ command: [process.execPath, "-e", "setTimeout(() => {}, 60000)"], cwd: dir.path, timeoutMs: 200 }),
    ).toMatchObject({ ok: false, timedOut: true });
    await expect(checkBeforeSpawn({ command: ["definitely-not-a-command-xyz"], cwd: dir.path })).rejects.toThrow("could not start");
    expect(() => checkBeforeSpawn({ command: [] as string[], cwd: join(dir.path) })).toThrow(
      "invalid options: command: expected the check",
    );
  });

  it("kills the check and throws AbortedError when the caller aborts", async () => {
    await using dir = createTempDir();
    const controller = new AbortController();
    const check = checkBeforeSpawn({
      command: [process.execPath, "-e", "console.log('started'); setTimeout(() => {}, 600000)"],
      cwd: dir.path,
      abortSignal: controller.signal,
    });
    setImmediate(() => controller.abort(new Error("the user pressed stop")));
    await expect(check).rejects.toSatisfy(
      (error: unknown) => AbortedError.isInstance(error) && (error.cause as Error).message === "the user pressed stop",
    );
    await expect(
      checkBeforeSpawn({ command: [process.execPath, "-e", ""], cwd: dir.path, abortSignal: AbortSignal.abort() }),
    ).rejects.toSatisfy((error: unknown) => AbortedError.isInstance(error));
  });
});

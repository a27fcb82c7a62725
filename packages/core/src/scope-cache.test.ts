import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { createTempDir, initRepo, type TempDir } from "@bulkhead/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sleep } from "./deadline.js";
import { parseTaskSpec } from "./parse-task-spec.js";
import { resolveScope } from "./resolve-scope.js";
import { createScopeCache } from "./scope-cache.js";
import { ScopeLimitError } from "./scope-limit-error.js";
import type { TokenCounter } from "./token-counter.js";

const specFor = (paths: string[], { maxFiles = 100_000, maxTokens = 100_000_000 } = {}) =>
  parseTaskSpec(
    JSON.stringify({
      task: "t",
      context_scope: { repos: [{ name: "repo", paths }], max_files: maxFiles, max_tokens: maxTokens },
      ownership: { primary_repo: "repo" },
    }),
  );

/** Counts words; remembers how many texts it was given, one by one or in batches. */
function countingCounter({ batches = false } = {}): TokenCounter & { texts: number } {
  const words = (text: string) => text.split(/\s+/).filter(Boolean).length;
  const counter: TokenCounter & { texts: number } = {
    name: "words",
    estimated: false,
    texts: 0,
    count(text: string) {
      counter.texts++;
      return words(text);
    },
    ...(batches
      ? {
          countMany(texts: readonly string[]) {
            counter.texts += texts.length;
            return Promise.resolve(texts.map(words));
          },
        }
      : {}),
  };
  return counter;
}

/** What git itself lists, for the same tree: the walk must agree with it. */
const gitListed = (repo: string) =>
  execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z"], { cwd: repo })
    .toString("utf8")
    .split("\0")
    .filter(Boolean)
    .sort();

describe("a persistent scope cache", () => {
  let dir: TempDir;
  let repo: string;
  let cacheDir: string;

  beforeAll(async () => {
    dir = createTempDir();
    repo = join(dir.path, "repo");
    cacheDir = join(dir.path, "cache");
    initRepo(repo, {
      ".gitignore": "*.log\nbuild/\n",
      "src/a.ts": "one two three\n",
      "src/b.ts": "four five\n",
      "src/deep/c.ts": "six seven eight nine\n",
      "docs/guide.md": "ten eleven\n",
    });
    dir.write({ "repo/src/debug.log": "ignored\n", "repo/build/out.js": "ignored too\n" });
    // Entries changed within the last 2 s are never persisted (a later change could keep the same
    // timestamps): let the fixture settle once, so the first resolve below can persist it.
    await sleep(2_100);
  });
  afterAll(() => dir.remove());

  it("lets a new process resolve an unchanged tree without reading or counting a file", async () => {
    const first = countingCounter();
    const cold = await resolveScope(specFor(["."]), { repos: { repo }, counter: first, cache: createScopeCache({ directory: cacheDir }) });
    expect(first.texts).toBe(5);
    expect(cold.files.map((file) => file.path)).toEqual(gitListed(repo));

    // A new cache object from the same directory stands for a new process.
    const second = countingCounter();
    const warm = await resolveScope(specFor(["."]), { repos: { repo }, counter: second, cache: createScopeCache({ directory: cacheDir }) });
    expect(second.texts).toBe(0);
    expect(warm.files).toEqual(cold.files);
    expect(warm.totals).toEqual(cold.totals);
  });

  it("sees a changed file, a new file and a changed .gitignore on a warm run", async () => {
    const cache = () => createScopeCache({ directory: cacheDir });
    await resolveScope(specFor(["."]), { repos: { repo }, counter: countingCounter(), cache: cache() });
    // Same size, new words: the fingerprint (mtime, ctime) changes, so it is read and counted again.
    writeFileSync(join(repo, "src/b.ts"), "four-five\n\n");
    writeFileSync(join(repo, "src/deep/new.ts"), "a b c d e f\n");
    writeFileSync(join(repo, ".gitignore"), "*.log\nbuild/\n*.md\n");
    const counter = countingCounter();
    const scope = await resolveScope(specFor(["."]), { repos: { repo }, counter, cache: cache() });
    // docs/guide.md is still tracked, but ignored now: a scope leaves ignored files out.
    expect(scope.files.map((file) => file.path)).toEqual([".gitignore", "src/a.ts", "src/b.ts", "src/deep/c.ts", "src/deep/new.ts"]);
    expect(scope.files.find((file) => file.path === "src/b.ts")!.tokens).toBe(1);
    expect(scope.files.find((file) => file.path === "src/deep/new.ts")!.tokens).toBe(6);
    // Only what changed is counted: b.ts, new.ts and the .gitignore itself.
    expect(counter.texts).toBe(3);
  });

  it("ignores a damaged cache file and rebuilds it", async () => {
    const file = join(cacheDir, "scope-cache.v1");
    await resolveScope(specFor(["src"]), { repos: { repo }, counter: countingCounter(), cache: createScopeCache({ directory: cacheDir }) });
    // Claim 999 tokens for every file: without a matching checksum the claim is never believed.
    const text = readFileSync(file, "utf8");
    const forged = text.replace(/(\["words","[0-9a-f]+",)\d+\]/g, "$1999]");
    expect(forged).not.toBe(text);
    writeFileSync(file, forged);
    const counter = countingCounter();
    const scope = await resolveScope(specFor(["src"]), { repos: { repo }, counter, cache: createScopeCache({ directory: cacheDir }) });
    expect(counter.texts).toBe(scope.files.length);
    expect(scope.files.every((entry) => entry.tokens < 999)).toBe(true);
    // Rebuilt: a truncated file is ignored the same way, and the next run is warm again.
    writeFileSync(file, readFileSync(file, "utf8").slice(0, 40));
    await resolveScope(specFor(["src"]), { repos: { repo }, counter: countingCounter(), cache: createScopeCache({ directory: cacheDir }) });
    const again = countingCounter();
    await resolveScope(specFor(["src"]), { repos: { repo }, counter: again, cache: createScopeCache({ directory: cacheDir }) });
    expect(again.texts).toBe(0);
  });

  it("never persists an entry for a file changed just before it was read", async () => {
    const racyDir = join(dir.path, "racy-cache");
    writeFileSync(join(repo, "src/fresh.ts"), "just written\n");
    await resolveScope(specFor(["src"]), { repos: { repo }, counter: countingCounter(), cache: createScopeCache({ directory: racyDir }) });
    const persisted = readFileSync(join(racyDir, "scope-cache.v1"), "utf8");
    expect(persisted).toContain(`${repo}/src/a.ts`);
    // Its count is kept (it belongs to the bytes that were hashed), its file identity is not.
    expect(persisted).not.toContain("src/fresh.ts");
  });
});

describe("resolveScope with stopAtLimit", () => {
  let dir: TempDir;
  let repo: string;
  const FILES = 300;

  beforeAll(() => {
    dir = createTempDir();
    repo = join(dir.path, "big");
    const files: Record<string, string> = {};
    // 300 files of 100 words each: 30,000 tokens; the heavy directory holds two thirds of them.
    for (let index = 0; index < FILES; index++) {
      const area = index < 200 ? "packages/heavy/src" : "packages/light/src";
      files[`${area}/file-${String(index).padStart(3, "0")}.ts`] = `${"word ".repeat(100)}\n`;
    }
    initRepo(repo, files);
  });
  afterAll(() => dir.remove());

  it("refuses an over-limit whole-repo scope after counting about its limit, not the whole tree", async () => {
    for (const batches of [false, true]) {
      const counter = countingCounter({ batches });
      const scope = await resolveScope(specFor(["."], { maxTokens: 2_000 }), { repos: { repo }, counter, cache: false, stopAtLimit: true });
      // 2,000 tokens are 20 files of 100 words: counting stops just past them.
      expect(counter.texts).toBeGreaterThan(20);
      expect(counter.texts).toBeLessThan(40);
      expect(scope.complete).toBe(false);
      expect(scope.files).toHaveLength(FILES);
      expect(scope.files.filter((file) => file.estimated)).toHaveLength(FILES - counter.texts);
      const violation = scope.violations.find((entry) => entry.kind === "max-tokens")!;
      expect(violation).toMatchObject({ limit: 2_000 });
      expect(violation.kind === "max-tokens" && violation.counted).toBeGreaterThan(2_000);
      expect(violation.message).toMatch(/more than [\d,]+ tokens .*counting stopped at the limit/);

      const error = (() => {
        try {
          scope.assertWithinLimits();
        } catch (caught) {
          return caught as ScopeLimitError;
        }
        throw new Error("expected a refusal");
      })();
      expect(error).toBeInstanceOf(ScopeLimitError);
      expect(error.estimated).toBe(true);
      expect(error.toJSON()).toMatchObject({ data: { estimated: true } });
      // The advice names the heavy directory, not the chain of ancestors holding everything.
      expect(error.largestDirectories[0]).toMatchObject({ path: "packages/heavy", files: 200 });
      expect(error.largestDirectories.map((spot) => spot.path)).not.toContain("packages");
    }
  });

  it("counts everything without stopAtLimit (the refusal is then exact)", async () => {
    const counter = countingCounter();
    const scope = await resolveScope(specFor(["."], { maxTokens: 2_000 }), { repos: { repo }, counter, cache: false });
    expect(counter.texts).toBe(FILES);
    expect(scope.complete).toBe(true);
    expect(scope.violations[0]).toMatchObject({ kind: "max-tokens", actual: 30_000 });
  });

  it("stops reading once max_files is certainly exceeded", async () => {
    const counter = countingCounter();
    const scope = await resolveScope(specFor(["."], { maxFiles: 10 }), { repos: { repo }, counter, cache: false, stopAtLimit: true });
    expect(counter.texts).toBe(11);
    expect(scope.violations).toEqual([
      expect.objectContaining({
        kind: "max-files",
        limit: 10,
        actual: FILES,
        counted: 11,
        message: expect.stringMatching(/about 300 files/),
      }),
    ]);
  });

  it("changes nothing for a scope within its limits", async () => {
    const counter = countingCounter();
    const scope = await resolveScope(specFor(["packages/light"]), { repos: { repo }, counter, cache: false, stopAtLimit: true });
    expect(scope.complete).toBe(true);
    expect(scope.violations).toEqual([]);
    expect(scope.totals).toEqual({ files: 100, bytes: 100 * 501, tokens: 10_000 });
  });
});

import { existsSync } from "node:fs";
import { join } from "node:path";
import { createTempDir, initRepo } from "@bulkhead/test-utils";
import { afterEach, describe, expect, it, vi } from "vitest";

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const { main } = await import("./main.js");
  let out = "";
  const code = await main(args, { stdout: (text) => void (out += text), stderr: () => undefined });
  return { code, out };
}

const specText = (paths: string[], maxTokens: number) =>
  `task: t\ncontext_scope:\n  repos:\n    - name: api\n      paths: ${JSON.stringify(paths)}\n  max_files: 1000\n  max_tokens: ${maxTokens}\nownership:\n  primary_repo: api\n`;

describe("bulkhead scope resolve, the command line's way", () => {
  const home = process.env.BULKHEAD_HOME;
  afterEach(() => {
    if (home === undefined) delete process.env.BULKHEAD_HOME;
    else process.env.BULKHEAD_HOME = home;
    vi.doUnmock("@bulkhead/budget");
    vi.doUnmock("@bulkhead/core");
    vi.resetModules();
  });

  it("answers a second run from its caches, without loading a tokenizer or the validating core", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "api"), { "src/a.ts": "export const a = 1;\n", "src/b.ts": "export function b() { return 2; }\n" });
    dir.write({ "spec.yaml": specText(["src"], 100_000) });
    process.env.BULKHEAD_HOME = join(dir.path, "home");
    const args = ["scope", "resolve", join(dir.path, "spec.yaml"), "--repo", `api=${join(dir.path, "api")}`, "--json"];
    const first = await cli(args);
    expect(first.code).toBe(0);
    expect(existsSync(join(dir.path, "home", "cache", "scope-cache.v1"))).toBe(true);
    expect(existsSync(join(dir.path, "home", "cache", "task-specs.v1"))).toBe(true);

    // A new "process": fresh modules, and the tokenizer's package and core's full entry unloadable.
    vi.resetModules();
    vi.doMock("@bulkhead/budget", () => {
      throw new Error("a warm run loaded @bulkhead/budget");
    });
    vi.doMock("@bulkhead/core", () => {
      throw new Error("a warm run loaded @bulkhead/core's full entry");
    });
    const second = await cli(args);
    expect(second).toEqual(first);
    expect(JSON.parse(second.out).files.map((file: { tokens: number }) => file.tokens)).toEqual([7, 10]);
  });

  it("refuses a whole-repo scope over max_tokens after counting about its limit, with estimated advice", async () => {
    await using dir = createTempDir();
    const files: Record<string, string> = {};
    for (let index = 0; index < 120; index++) files[`${index < 80 ? "big" : "small"}/f${index}.ts`] = `${"word ".repeat(400)}\n`;
    initRepo(join(dir.path, "api"), files);
    dir.write({ "spec.yaml": specText(["."], 2_000) });
    process.env.BULKHEAD_HOME = join(dir.path, "home");
    const { code, out } = await cli(["scope", "resolve", join(dir.path, "spec.yaml"), "--repo", `api=${join(dir.path, "api")}`, "--json"]);
    expect(code).toBe(2);
    const data = JSON.parse(out) as {
      complete: boolean;
      files: { estimated?: boolean }[];
      violations: { kind: string; counted?: number }[];
      narrowing: { estimated: boolean; remove: { path: string; kind: string }[] };
    };
    expect(data.complete).toBe(false);
    // 120 files listed, most from their size only.
    expect(data.files).toHaveLength(120);
    expect(data.files.filter((file) => file.estimated).length).toBeGreaterThan(100);
    expect(data.violations[0]).toMatchObject({ kind: "max-tokens", counted: expect.any(Number) });
    expect(data.narrowing.estimated).toBe(true);
    expect(data.narrowing.remove[0]).toMatchObject({ kind: "directory" });
  });
});

// The command line's contract, verb by verb, from its own usage lines: --help exits 0, wrong usage
// exits 1 with a message naming the argument, a refusal exits 2, and --json output parses in
// every case (one JSON document on stdout).
import { join } from "node:path";
import { createTempDir, initRepo } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { main } from "./main.js";

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, { stdout: (text) => void (out += text), stderr: (text) => void (err += text), progress: () => undefined });
  return { code, out, err };
}

/** Runs with --json: the exit code and the one JSON document it printed (or a failure naming what did not parse). */
async function json(args: string[]): Promise<{ code: number; body: Record<string, unknown> }> {
  const { code, out } = await cli([...args, "--json"]);
  expect(out.trim().split("\n"), `bulkhead ${args.join(" ")} --json prints one document`).toHaveLength(1);
  return { code, body: JSON.parse(out) as Record<string, unknown> };
}

/** Every verb, from `bulkhead --help --json` and `bulkhead memory --help --json`. */
async function verbs(): Promise<{ name: string[]; usage: string }[]> {
  const top = (await json(["--help"])).body.usage as string[];
  const memory = (await json(["memory", "--help"])).body.usage as string[];
  return [...top.filter((usage) => !usage.startsWith("bulkhead memory ") || !usage.includes("|")), ...memory].map((usage) => ({
    usage,
    name: usage
      .split(" ")
      .slice(1)
      .filter((word, index, words) => index < 2 && /^[a-z]+$/.test(word) && words.slice(0, index).every((prior) => /^[a-z]+$/.test(prior))),
  }));
}

const required = (usage: string) =>
  [
    ...usage
      .split(" -- ")[0]!
      .replace(/\[[^\]]*\](\.\.\.)?/g, "")
      .replace(/--[a-z-]+ <[^>]+>/g, "")
      .matchAll(/<[^>]+>/g),
  ].map((match) => match[0]);

describe("bulkhead: every verb", () => {
  it("--help exits 0 (and parses with --json); wrong usage exits 1 naming the argument, in JSON too", async () => {
    const all = await verbs();
    expect(all.length).toBeGreaterThan(40);
    for (const { name, usage } of all) {
      const label = `bulkhead ${name.join(" ")}`;
      const help = await cli([...name, "--help"]);
      expect(help.code, `${label} --help`).toBe(0);
      expect(help.out, label).toContain(`Usage: ${usage}`);
      expect((await json([...name, "--help"])).body, label).toMatchObject({ usage });

      // A flag the verb does not take is named.
      const bogus = await json([...name, "--no-such-flag"]);
      expect(bogus.code, `${label} --no-such-flag`).toBe(1);
      expect(String((bogus.body.error as { message: string }).message), label).toContain("--no-such-flag");

      const needs = required(usage);
      if (needs.length > 0) {
        // Nothing given: the first missing argument is named, on stderr for people and in JSON for scripts.
        const bare = await cli(name);
        expect(bare.code, `${label} without arguments`).toBe(1);
        expect(bare.err, label).toContain(`missing ${needs[0]}`);
        const missing = await json(name);
        expect(missing.code, label).toBe(1);
        expect(missing.body.error, label).toMatchObject({ code: "USAGE", message: expect.stringContaining(needs[0]!) });
      } else {
        // Nothing required: an argument beyond those it takes is named, not ignored.
        const head = usage.split(" -- ")[0]!.replace(/--[a-z-]+ <[^>]+>/g, "");
        if (/(>|\])\.\.\./.test(head) || usage.includes(" -- ")) continue;
        const optional = [...head.matchAll(/<[^>]+>/g)].length;
        const extra = await json([...name, ...Array.from({ length: optional }, () => "x"), "surplus-argument"]);
        expect(extra.code, `${label} surplus-argument`).toBe(1);
        expect(String((extra.body.error as { message: string }).message), label).toContain('"surplus-argument"');
      }
    }
  });

  it("groups, unknown commands, repeated flags and duplicate repos are wrong usage (1), named", async () => {
    const lead = await cli(["lead"]);
    expect(lead).toMatchObject({ code: 1, err: expect.stringContaining("bulkhead lead needs a verb") });
    expect(lead.err).toContain("bulkhead lead submit <repo-dir>");
    expect((await cli(["lead", "--help"])).code).toBe(0);
    const unknown = await cli(["sesion", "list"]);
    expect(unknown).toMatchObject({ code: 1, err: expect.stringContaining('unknown command "sesion": did you mean "session"?') });
    expect((await json(["sesion"])).body.error).toMatchObject({ code: "USAGE" });
    const twice = await json(["scope", "resolve", "a.yaml", "--repo", "api=a", "--repo", "api=b"]);
    expect(twice.code).toBe(1);
    expect((twice.body.error as { message: string }).message).toContain('--repo: "api" is given twice');
    const again = await json(["hook", "claim", "h", "t", "--worker", "a", "--worker", "b"]);
    expect((again.body.error as { message: string }).message).toBe("--worker was given 2 times: give it once");
    expect((await json(["hook", "claim", "h", "t", "--worker", "a", "--ttl", "soon"])).body.error).toMatchObject({
      message: expect.stringContaining("--ttl: expected a duration"),
    });
  });

  it("refusals exit 2 and failures 1, each with --json that parses", async () => {
    await using dir = createTempDir();
    const api = join(dir.path, "api");
    initRepo(api, { "src/a.ts": "export const a = 1;\n", "src/b.ts": "export const b = 2;\n" });
    const spec = (limits: string, budgets = "") =>
      `task: t\nid: T-1\ncontext_scope:\n  repos:\n    - name: api\n      paths: ["src/"]\n${limits}\nownership:\n  primary_repo: api\n${budgets}`;
    dir.write({
      "tight.yaml": spec("  max_files: 1\n  max_tokens: 1000"),
      "ok.yaml": spec("  max_files: 10\n  max_tokens: 1000", "budgets:\n  session_total: 5\n"),
      "partial.yaml": `${spec("  max_files: 10\n  max_tokens: 1000")}expected_files:\n  - path: src/c.ts\n    change: create\n`,
    });
    const hook = join(dir.path, "hook");
    const cases: { args: string[]; code: 0 | 1 | 2; says: string }[] = [
      { args: ["scope", "resolve", join(dir.path, "tight.yaml"), "--repo", `api=${api}`], code: 2, says: "over max_files 1" },
      // The advice is one file (the directory holds the whole scope: never advised).
      {
        args: ["scope", "resolve", join(dir.path, "tight.yaml"), "--repo", `api=${api}`],
        code: 2,
        says: "to fit, exclude this (leaves 1 files",
      },
      { args: ["budget", "check", join(dir.path, "ok.yaml"), "--repo", `api=${api}`], code: 2, says: "session_total" },
      { args: ["scope", "resolve", join(dir.path, "ok.yaml")], code: 1, says: "missing --repo" },
      { args: ["scope", "resolve", join(dir.path, "ok.yaml"), "--repo", `web=${api}`], code: 1, says: "--repo: " },
      {
        args: ["plan", "waves", join(dir.path, "ok.yaml"), "--repo", `api=${api}`, "--max-per-wave", "x"],
        code: 1,
        says: "--max-per-wave",
      },
      { args: ["hook", "add", hook, "types"], code: 0, says: "added types" },
      { args: ["hook", "claim", hook, "types", "--worker", "agent-1", "--ttl", "30m"], code: 0, says: "claimed by agent-1" },
      { args: ["hook", "claim", hook, "types", "--worker", "agent-2"], code: 2, says: "types" },
      { args: ["hook", "ready", join(dir.path, "no-hook")], code: 1, says: "does not exist" },
      { args: ["hook", "complete", hook, "types", "--token", "0123456789abcdef"], code: 2, says: "no longer holds types" },
      { args: ["continue", join(dir.path, "partial.yaml"), "--repo", `api=${api}`, "--base", "api=HEAD"], code: 2, says: "partial" },
      {
        args: [
          "continue",
          join(dir.path, "partial.yaml"),
          "--repo",
          `api=${api}`,
          "--base",
          "api=HEAD",
          "--ref",
          "src/a.ts:1=the export pattern",
        ],
        code: 2,
        says: "- the export pattern: `src/a.ts:1`",
      },
      {
        args: ["continue", join(dir.path, "partial.yaml"), "--repo", `api=${api}`, "--base", "api=HEAD", "--ref", "src/nope.ts:3=x"],
        code: 1,
        says: "--ref: api/src/nope.ts does not exist",
      },
      {
        args: ["continue", join(dir.path, "partial.yaml"), "--repo", `api=${api}`, "--base", "api=HEAD", "--ref", "src/a.ts:90=x"],
        code: 1,
        says: "not a line 90",
      },
      {
        args: ["continue", join(dir.path, "partial.yaml"), "--repo", `api=${api}`, "--base", "api=HEAD", "--check", "exit 3"],
        code: 2,
        says: "check `exit 3`: failed (exit 3)",
      },
      { args: ["budget", "report", join(dir.path, "none.jsonl")], code: 1, says: "does not exist" },
      { args: ["proposals", "show", "p-none", "--store", join(dir.path, "p")], code: 1, says: 'no proposal "p-none"' },
      {
        args: ["lead", "submit", api, "--issue", "T-1", "--worker", "w", "--message", "m", "--manifest", "docs/**", "src/a.ts"],
        code: 2,
        says: "manifest",
      },
    ];
    for (const { args, code, says } of cases) {
      const human = await cli(args);
      expect(human.code, `bulkhead ${args.join(" ")}`).toBe(code);
      expect(`${human.out}${human.err}`, `bulkhead ${args.join(" ")}`).toContain(says);
      if (args[0] === "hook" && args[1] !== "ready") continue; // hook state moved on: the JSON run is below
      const machine = await json(args);
      expect(machine.code, `bulkhead ${args.join(" ")} --json`).toBe(code);
    }
    const claimed = await json(["hook", "claim", hook, "types", "--worker", "agent-3"]);
    expect(claimed).toMatchObject({ code: 2, body: { error: { code: "CLAIM_REFUSED" } } });
  });
});

// A dispatch whose scope is over its limit is refused (exit 2) before any session exists, once
// the limit is certainly exceeded: it does not read and count the rest of the tree first.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTempDir, initRepo } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { main } from "./main.js";

describe("dispatch over a scope limit", () => {
  it("is refused with estimated advice after counting about its limit, and starts no session", async () => {
    await using dir = createTempDir();
    // 300 files of about 250 tokens each; the limit is 2,000 tokens.
    const files = Object.fromEntries(
      Array.from({ length: 300 }, (_, index) => [
        `src/part-${String(index).padStart(3, "0")}.ts`,
        `export const value${index} = "${"word ".repeat(250)}";\n`,
      ]),
    );
    initRepo(join(dir.path, "api"), files);
    writeFileSync(
      join(dir.path, "bulkhead.yaml"),
      `name: refusal\nrepos:\n  - name: api\n    path: api\nimage:\n  existing: bulkhead-never-used:latest\nagent:\n  command: ["/bin/true"]\n`,
    );
    writeFileSync(
      join(dir.path, "handover.yaml"),
      `task: "Too much"\nid: WIDE-1\ncontext_scope:\n  repos:\n    - name: api\n      paths: ["src/"]\n  max_files: 1000\n  max_tokens: 2000\nownership:\n  primary_repo: api\n`,
    );
    let out = "";
    let err = "";
    const home = join(dir.path, "home");
    const previous = process.env.BULKHEAD_HOME;
    process.env.BULKHEAD_HOME = home;
    try {
      const code = await main(["dispatch", join(dir.path, "bulkhead.yaml"), "--spec", join(dir.path, "handover.yaml"), "--json"], {
        stdout: (text) => void (out += text),
        stderr: (text) => void (err += text),
      });
      expect(code).toBe(2);
    } finally {
      if (previous === undefined) delete process.env.BULKHEAD_HOME;
      else process.env.BULKHEAD_HOME = previous;
    }
    const refusal = JSON.parse(out) as {
      error: {
        code: string;
        message: string;
        data: { estimated: boolean; violations: { kind: string; counted?: number; actual: number }[] };
      };
    };
    expect(refusal.error.code).toBe("SCOPE_LIMIT");
    expect(refusal.error.data.estimated).toBe(true);
    const [tokens] = refusal.error.data.violations;
    expect(tokens).toMatchObject({ kind: "max-tokens" });
    // Counted exactly: past the limit, far short of the whole tree (about 75,000 tokens).
    expect(tokens!.counted).toBeGreaterThan(2_000);
    expect(tokens!.counted).toBeLessThan(20_000);
    expect(tokens!.actual).toBeGreaterThan(tokens!.counted!);
    expect(err).not.toContain("session");
  });
});

// A scope may name the files its task will create: scope resolve and budget check accept it (exit
// 0, the limits count existing files only), and the agent's prompt marks them as files to create.
import { join } from "node:path";
import { loadTaskSpec, resolveScope } from "@bulkhead/core";
import { renderTaskPrompt } from "@bulkhead/handover";
import { createTempDir, initRepo } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { main } from "./main.js";

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, { stdout: (text) => void (out += text), stderr: (text) => void (err += text) });
  return { code, out, err };
}

describe("files to create", () => {
  it("are marked in the resolved scope and the prompt, and do not count against the limits", async () => {
    await using dir = createTempDir();
    const api = join(dir.path, "api");
    initRepo(api, { "src/middleware/auth.ts": "export const auth = 1;\n" });
    dir.write({
      "spec.yaml":
        "task: Add rate limiting\nid: RATE-1\ncontext_scope:\n  repos:\n    - name: api\n      paths: [src/middleware/auth.ts, src/middleware/rate-limit.ts]\n  max_files: 1\n  max_tokens: 1000\nownership:\n  primary_repo: api\n",
    });
    const specPath = join(dir.path, "spec.yaml");
    const resolved = await cli(["scope", "resolve", specPath, "--repo", `api=${api}`]);
    expect(resolved.code).toBe(0);
    expect(resolved.out).toContain("api/src/middleware/rate-limit.ts  to create (does not exist yet)");
    expect(resolved.out).toContain("1 files, ");
    expect(resolved.out).toContain(", 1 to create");
    expect(JSON.parse((await cli(["scope", "resolve", specPath, "--repo", `api=${api}`, "--json"])).out)).toMatchObject({
      violations: [],
      toCreate: [{ repo: "api", path: "src/middleware/rate-limit.ts" }],
    });
    expect((await cli(["budget", "check", specPath, "--repo", `api=${api}`])).code).toBe(0);
    const spec = await loadTaskSpec(specPath);
    const prompt = renderTaskPrompt({ spec, scope: await resolveScope(spec, { repos: { api } }) });
    expect(prompt).toContain("## Files to create (1; they do not exist yet)\n\n- `api/src/middleware/rate-limit.ts`: create it");
  });
});

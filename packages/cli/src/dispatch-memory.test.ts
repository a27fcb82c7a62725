import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createFileMemoryStore, GENERATED_MEMORY_MARKER, renderMemoryEntry, type MemoryEntry } from "@bulkhead/memory";
import { createTempDir, git, initRepo } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { main } from "./main.js";

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, { stdout: (text) => void (out += text), stderr: (text) => void (err += text), progress: () => undefined });
  return { code, out, err };
}

const entry = (id: string, applies: MemoryEntry["applies"], overrides: Partial<MemoryEntry> = {}): MemoryEntry => ({
  id,
  kind: "convention",
  status: "accepted",
  title: `Convention ${id}`,
  body: "",
  applies,
  source: { kind: "handover", ref: "handover-1", by: "agent@s1" },
  createdAt: "2026-11-01T10:00:00.000Z",
  updatedAt: "2026-11-01T10:00:00.000Z",
  acceptedBy: "alice",
  acceptedAt: "2026-11-02T10:00:00.000Z",
  ...overrides,
});

// The scripted agent: keeps the prompt it was given and the instructions file it can read, so the
// test sees both from the lead's commit, as they reached the box.
const AGENT = `#!/bin/sh
printf '%s' "$BULKHEAD_PROMPT" > /workspace/backend-api/prompt.txt
cat /workspace/CLAUDE.md > /workspace/backend-api/seen-claude.md
echo '{"type":"assistant","message":{"id":"m1","usage":{"input_tokens":100,"output_tokens":50}}}'
echo '{"type":"result","subtype":"success","is_error":false,"num_turns":1,"usage":{"input_tokens":100,"output_tokens":50}}'
`;

describe("bulkhead dispatch with project memory", () => {
  it("gives the agent exactly the entries for its scope within the share, lists what did not fit, and the handover records them", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "backend-api"), {
      "src/middleware/index.ts": "export {};\n",
      "src/routes/user.ts": "export const user = 1;\n",
    });
    initRepo(join(dir.path, "frontend"), { "src/api.ts": "export {};\n" });
    writeFileSync(join(dir.path, "agent.sh"), AGENT);
    writeFileSync(
      join(dir.path, "bulkhead.yaml"),
      `name: memory-e2e\nrepos:\n  - name: backend-api\n    path: backend-api\n  - name: frontend\n    path: frontend\nimage:\n  files:\n    rootfs/bin/busybox: /bin/busybox\n    rootfs/agent.sh: ${join(dir.path, "agent.sh")}\n  dockerfile: |\n    FROM scratch\n    COPY rootfs/ /\n    RUN ["/bin/busybox", "--install", "-s", "/bin"]\n    RUN ["/bin/busybox", "mkdir", "-p", "-m", "1777", "/tmp"]\nagent:\n  command: ["/bin/sh", "/agent.sh"]\n`,
    );
    // context_read 5000: the memory share is 500 tokens.
    writeFileSync(
      join(dir.path, "handover.yaml"),
      `task: "Add a limit"\nid: MEM-1\ncontext_scope:\n  repos:\n    - name: backend-api\n      paths: ["src/"]\n  max_files: 10\n  max_tokens: 10000\nownership:\n  primary_repo: backend-api\nbudgets:\n  context_read: 5000\n  session_total: 100000\n`,
    );
    const memory = join(dir.path, "memory");
    const store = createFileMemoryStore(memory);
    const entries = [
      entry("m-path-middleware", [{ repo: "backend-api", paths: ["src/middleware"] }], {
        kind: "decision",
        why: "instances share counters",
      }),
      entry("m-repo-backend", [{ repo: "backend-api", paths: [] }]),
      // Learned in the frontend, marked for the workspace: it reaches a task scoped only to backend-api.
      entry("m-ws-small", "workspace", { kind: "learning", learning: "failure", foundIn: { repo: "frontend", path: "src/api.ts" } }),
      // Newer, so ranked before m-ws-small, and too large for the share: listed as not fitted.
      entry("m-ws-big", "workspace", { body: "Long context. ".repeat(300), updatedAt: "2026-11-20T10:00:00.000Z" }),
      entry("m-frontend-only", [{ repo: "frontend", paths: [] }]),
      entry("m-other-path", [{ repo: "backend-api", paths: ["docs"] }]),
      entry("m-proposed", [{ repo: "backend-api", paths: [] }], { status: "proposed", acceptedBy: undefined, acceptedAt: undefined }),
    ];
    for (const item of entries) expect(await store.create(item)).toBe("created");
    // A malformed file: reported by path and line, never given.
    writeFileSync(
      join(memory, "m-broken.md"),
      renderMemoryEntry(entry("m-broken", "workspace")).replace("kind: convention", "kind: rumour"),
    );

    process.env.BULKHEAD_HOME = join(dir.path, "home");
    try {
      const dispatched = await cli([
        "dispatch",
        join(dir.path, "bulkhead.yaml"),
        "--spec",
        join(dir.path, "handover.yaml"),
        "--dir",
        memory,
        "--json",
      ]);
      expect(dispatched.code).toBe(0);
      const result = JSON.parse(dispatched.out) as {
        session: string;
        prompt: string;
        memory: {
          given: string[];
          notFitted: string[];
          tokens: number;
          budget: number;
          problems: string[];
          instructions: { written: string[] };
        };
      };
      expect(result.memory).toMatchObject({
        given: ["m-path-middleware", "m-repo-backend", "m-ws-small"],
        notFitted: ["m-ws-big"],
        budget: 500,
      });
      expect(result.memory.tokens).toBeGreaterThan(0);
      expect(result.memory.tokens).toBeLessThanOrEqual(500);
      expect(result.memory.problems).toEqual([expect.stringMatching(/m-broken\.md:\d+:\d+ kind: /)]);

      // The prompt and the instruction file carry exactly the given entries, and the same section.
      const sha = JSON.parse((await cli(["harvest", result.session, "--out", join(dir.path, "handover.md"), "--json"])).out) as {
        sha: string;
      };
      const source = join(dir.path, "backend-api");
      const prompt = git(source, ["show", `${sha.sha}:prompt.txt`]);
      expect(`${prompt}\n`).toBe(result.prompt);
      const claude = `${git(source, ["show", `${sha.sha}:seen-claude.md`])}\n`;
      expect(claude.startsWith(`${GENERATED_MEMORY_MARKER}\n\n## Project memory`)).toBe(true);
      const section = claude.slice(GENERATED_MEMORY_MARKER.length + 2);
      expect(prompt).toContain(section.trimEnd());
      for (const id of result.memory.given) expect(section).toContain(`; ${id})`);
      for (const id of ["m-ws-big", "m-frontend-only", "m-other-path", "m-proposed", "m-broken"]) {
        expect(prompt).not.toContain(id);
        expect(section).not.toContain(id);
      }
      expect(section.indexOf("m-path-middleware")).toBeLessThan(section.indexOf("m-repo-backend"));
      expect(section.indexOf("m-repo-backend")).toBeLessThan(section.indexOf("m-ws-small"));

      // The handover lists what the agent was given; the store counted one use of each.
      const handover = readFileSync(join(dir.path, "handover.md"), "utf8");
      expect(handover).toContain("## Memory given\n- m-path-middleware\n- m-repo-backend\n- m-ws-small\n");
      const { usage } = await store.list();
      expect(Object.keys(usage).sort()).toEqual(["m-path-middleware", "m-repo-backend", "m-ws-small"]);
      expect(Object.values(usage).map((use) => use.uses)).toEqual([1, 1, 1]);
      expect((await cli(["session", "rm", result.session, "--force"])).code).toBe(0);

      // A scope that leaves less of the context budget leaves memory less: scope + memory stays within context_read.
      writeFileSync(
        join(dir.path, "tight.yaml"),
        readFileSync(join(dir.path, "handover.yaml"), "utf8")
          .replace("id: MEM-1", "id: MEM-2")
          .replace("context_read: 5000", "context_read: 80"),
      );
      const tight = await cli([
        "dispatch",
        join(dir.path, "bulkhead.yaml"),
        "--spec",
        join(dir.path, "tight.yaml"),
        "--dir",
        memory,
        "--json",
      ]);
      expect(tight.code).toBe(0);
      const second = JSON.parse(tight.out) as typeof result;
      expect(second.memory.budget).toBeLessThanOrEqual(8);
      expect(second.memory.given).toEqual([]);
      expect(second.memory.notFitted).toEqual(["m-path-middleware", "m-repo-backend", "m-ws-big", "m-ws-small"]);
      expect(second.prompt).not.toContain("## Project memory");
      expect((await cli(["session", "rm", second.session, "--force"])).code).toBe(0);
    } finally {
      delete process.env.BULKHEAD_HOME;
    }
  });
});

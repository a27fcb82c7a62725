import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTokenCounter } from "@bulkhead/budget";
import { parseTaskSpec } from "@bulkhead/core";
import { buildHandover, parseHandover, renderHandover } from "@bulkhead/handover";
import { MEMORY_SECTION_HEADER, renderMemoryEntry, type MemoryEntry } from "@bulkhead/memory";
import { createTempDir, git, initRepo } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { describeDispatchMemory, prepareDispatchMemory } from "./dispatch-memory.js";
import type { DispatchRecord } from "./dispatch-record.js";
import { main } from "./main.js";

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, { stdout: (text) => void (out += text), stderr: (text) => void (err += text), progress: () => undefined });
  return { code, out, err };
}
const json = async (args: string[]) => {
  const result = await cli([...args, "--json"]);
  return { code: result.code, data: JSON.parse(result.out) };
};

// The project's own agent command (a script, no model): it keeps the prompt it was given, so the
// test reads it back from the lead's commit exactly as it reached the box.
const AGENT = `#!/bin/sh
printf '%s' "$BULKHEAD_PROMPT" > /workspace/backend-api/prompt.txt
echo '{"type":"assistant","message":{"id":"m1","usage":{"input_tokens":100,"output_tokens":50}}}'
echo '{"type":"result","subtype":"success","is_error":false,"num_turns":1,"usage":{"input_tokens":100,"output_tokens":50}}'
`;

const specText = (id: string) =>
  `task: "Limit requests per user"\nid: ${id}\ncontext_scope:\n  repos:\n    - name: backend-api\n      paths: ["src/"]\n  max_files: 10\n  max_tokens: 10000\nownership:\n  primary_repo: backend-api\nbudgets:\n  context_read: 5000\n  session_total: 100000\n`;

describe("project memory from one handover to the next dispatch", () => {
  it("a handover with two decisions → memory propose → one accepted, the other left proposed → the next dispatch's prompt has exactly that one, counted in the context read, and its handover lists it", async () => {
    await using dir = createTempDir();
    const api = join(dir.path, "backend-api");
    initRepo(api, { "src/middleware/index.ts": "export {};\n", "src/routes/user.ts": "export const user = 1;\n" });
    const base = git(api, ["rev-parse", "HEAD"]);
    writeFileSync(join(dir.path, "agent.sh"), AGENT);
    writeFileSync(
      join(dir.path, "bulkhead.yaml"),
      `name: memory-flow\nrepos:\n  - name: backend-api\n    path: backend-api\nimage:\n  files:\n    rootfs/bin/busybox: /bin/busybox\n    rootfs/agent.sh: ${join(dir.path, "agent.sh")}\n  dockerfile: |\n    FROM scratch\n    COPY rootfs/ /\n    RUN ["/bin/busybox", "--install", "-s", "/bin"]\n    RUN ["/bin/busybox", "mkdir", "-p", "-m", "1777", "/tmp"]\nagent:\n  command: ["/bin/sh", "/agent.sh"]\n`,
    );

    // Task 1 changed the repository for real; its handover carries two decisions.
    writeFileSync(join(api, "src/middleware/rateLimit.ts"), "export const limit = 100;\n");
    git(api, ["add", "--all"]);
    git(api, ["commit", "--quiet", "--message", "rate limit"]);
    const first = await buildHandover({
      spec: parseTaskSpec(specText("MEM-FLOW-1")),
      repos: { "backend-api": api },
      base: { "backend-api": base },
      summary: ["Added the rate-limit middleware"],
      decisions: [
        "Rate limits live in Redis — every instance must share the same counters",
        "Limit by user id because offices share an IP",
      ],
    });
    const handoverPath = join(dir.path, "handover-1.md");
    writeFileSync(handoverPath, renderHandover(first));
    const memory = join(dir.path, "memory");

    // Proposed from the handover (by the agent), reviewed by a person: one accepted, one left proposed.
    const proposed = await json(["memory", "propose", handoverPath, "--dir", memory, "--by", "agent@s1"]);
    expect(proposed.code).toBe(0);
    const [redis, byUser] = proposed.data.proposed as { id: string; kind: string; title: string; result: string }[];
    expect(proposed.data.proposed).toHaveLength(2);
    expect([redis!.kind, redis!.result, byUser!.kind, byUser!.result]).toEqual(["decision", "created", "decision", "created"]);
    expect(redis!.title).toBe("Rate limits live in Redis");
    expect((await json(["memory", "accept", redis!.id, "--dir", memory, "--by", "alice"])).code).toBe(0);
    // A malformed entry file beside them: reported by path and line on the dispatch, never given.
    writeFileSync(
      join(memory, "m-broken-entry.md"),
      renderMemoryEntry({
        id: "m-broken-entry",
        kind: "convention",
        status: "accepted",
        title: "Broken",
        body: "",
        applies: "workspace",
        source: { kind: "person", ref: "alice", by: "alice" },
        createdAt: "2026-11-01T10:00:00.000Z",
        updatedAt: "2026-11-01T10:00:00.000Z",
        acceptedBy: "alice",
        acceptedAt: "2026-11-01T10:00:00.000Z",
      } satisfies MemoryEntry).replace("applies: workspace", "applies: everywhere"),
    );
    const listed = await json(["memory", "list", "--dir", memory, "--status", "all"]);
    expect(listed.data.entries.map((entry: { id: string; status: string }) => [entry.id, entry.status]).sort()).toEqual(
      [
        [redis!.id, "accepted"],
        [byUser!.id, "proposed"],
      ].sort(),
    );

    // The next task, dispatched for real (Docker session, the script agent).
    writeFileSync(join(dir.path, "handover.yaml"), specText("MEM-FLOW-2"));
    process.env.BULKHEAD_HOME = join(dir.path, "home");
    try {
      const dispatched = await cli([
        "dispatch",
        join(dir.path, "bulkhead.yaml"),
        "--spec",
        join(dir.path, "handover.yaml"),
        "--dir",
        memory,
      ]);
      expect(dispatched.code).toBe(0);
      // Without --json, the log names the malformed file by path and line.
      expect(dispatched.out).toMatch(/memory: skipped \S*m-broken-entry\.md:\d+:\d+ applies: /);
      const session = /session: (\S+)/.exec(dispatched.out)![1]!;

      // The record dispatch kept on the host for harvest.
      const record = JSON.parse(readFileSync(join(dir.path, "home", "sessions", session, "dispatch.json"), "utf8")) as DispatchRecord;
      expect(record.memory!.given).toEqual([redis!.id]);
      expect(record.memory!.notFitted).toEqual([]);
      expect(record.memory!.problems).toEqual([expect.stringMatching(/m-broken-entry\.md:\d+:\d+ applies: /)]);

      // The prompt the agent ran with, from the lead's commit: exactly the accepted decision.
      const harvested = await json(["harvest", session, "--out", join(dir.path, "handover-2.md")]);
      expect(harvested.code).toBe(0);
      const prompt = git(api, ["show", `${harvested.data.sha}:prompt.txt`]);
      const section = prompt.slice(prompt.indexOf(MEMORY_SECTION_HEADER));
      expect(prompt.indexOf(MEMORY_SECTION_HEADER)).toBeGreaterThan(0);
      const bullets = section.split("\n").filter((line) => line.startsWith("- ["));
      expect(bullets).toEqual([
        `- [decision] Rate limits live in Redis Why: every instance must share the same counters (backend-api; ${redis!.id})`,
      ]);
      expect(prompt).not.toContain(byUser!.id);
      expect(prompt).not.toContain("offices share an IP");
      expect(prompt).not.toContain("m-broken-entry");

      // Its tokens are the section's o200k count, and the context read was checked with scope + memory.
      using counter = createTokenCounter({ encoding: "o200k_base" });
      const memoryTokens = counter.count(`${MEMORY_SECTION_HEADER}${bullets[0]}\n`);
      expect(record.memory!.tokens).toBe(memoryTokens);
      const scope = await json(["scope", "resolve", join(dir.path, "handover.yaml"), "--repo", `backend-api=${api}`]);
      expect(record.memory!.contextRead).toEqual({
        scope: scope.data.totals.tokens,
        memory: memoryTokens,
        total: scope.data.totals.tokens + memoryTokens,
        limit: 5000,
      });

      // The handover this dispatch's harvest wrote lists the one entry given, and reads back.
      const handover = readFileSync(join(dir.path, "handover-2.md"), "utf8");
      expect(handover).toContain(`## Memory given\n- ${redis!.id}\n`);
      expect(handover).not.toContain(byUser!.id);
      expect(parseHandover(handover).memoryGiven).toEqual([redis!.id]);
      expect((await cli(["session", "rm", session, "--force"])).code).toBe(0);
    } finally {
      delete process.env.BULKHEAD_HOME;
    }
  });

  it("a malformed file in the default ./memory of the user's own gets one log line; a named directory gets one line per file", async () => {
    await using dir = createTempDir();
    dir.write({
      "api/src/index.ts": "export {};\n",
      // Not bulkhead's: notes that happen to live in a folder called memory.
      "memory/meeting-notes.md": "# Notes\n\n- talk to ops\n",
      "memory/todo-list.md": "---\ntitle: [unclosed\n---\n",
    });
    const spec = parseTaskSpec(specText("MEM-FLOW-3"));
    const scope = {
      files: [{ repo: "backend-api", path: "src/index.ts", bytes: 11, tokens: 4 }],
      totals: { files: 1, bytes: 11, tokens: 4 },
    };
    using counter = createTokenCounter({ encoding: "o200k_base" });
    const memory = join(dir.path, "memory");

    const defaulted = await prepareDispatchMemory({ dir: memory, named: false, spec, scope, counter });
    expect(defaulted.unrelated).toBe(true);
    expect(defaulted.selection.selected).toEqual([]);
    // Every problem is still in the record, by path and line; the log has one line for all of them.
    expect(defaulted.problems).toEqual([
      expect.stringMatching(/memory\/meeting-notes\.md:1:1 /),
      expect.stringMatching(/memory\/todo-list\.md:\d+:\d+ /),
    ]);
    const lines = describeDispatchMemory(defaulted);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(
      /^memory: the default directory \.\/memory holds no valid memory entry and 2 files that do not parse \(first: \S*meeting-notes\.md:1:1 /,
    );
    expect(lines[1]).toContain("pass --dir or set BULKHEAD_MEMORY_DIR");

    // Named with --dir, or holding a valid entry: each malformed file is its own line.
    const named = await prepareDispatchMemory({ dir: memory, spec, scope, counter });
    expect(named.unrelated).toBe(false);
    expect(describeDispatchMemory(named).slice(1)).toEqual([
      expect.stringMatching(/^memory: skipped \S*meeting-notes\.md:1:1 /),
      expect.stringMatching(/^memory: skipped \S*todo-list\.md:\d+:\d+ /),
    ]);
    expect(
      (
        await json([
          "memory",
          "propose",
          "--kind",
          "convention",
          "--title",
          "Errors carry a code",
          "--applies",
          "workspace",
          "--by",
          "alice",
          "--dir",
          memory,
        ])
      ).code,
    ).toBe(0);
    const withEntry = await prepareDispatchMemory({ dir: memory, named: false, spec, scope, counter });
    expect(withEntry.unrelated).toBe(false);
    expect(describeDispatchMemory(withEntry).filter((line) => line.startsWith("memory: skipped "))).toHaveLength(2);
  });
});

// The continuation decision as a flow, on the real engine: a dispatch stopped by its generation
// budget → `continue --extend` resumes the same agent conversation with the raised budget (the
// extension in the session's ledger, with who approved it) and the task completes; a
// continuation whose spec widens the scope is refused, a narrower one runs. The agent is the
// project's agent command (a script printing Claude Code's stream-json; no model): it resumes the
// conversation named in BULKHEAD_RESUME, as `claude --resume <id>` would.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
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

const spec = (paths: string[], extra = "") =>
  `task: "Finish the module"\nid: DONE-1\ncontext_scope:\n  repos:\n    - name: backend-api\n      paths: ${JSON.stringify(paths)}\n  max_files: 10\n  max_tokens: 10000\nownership:\n  primary_repo: backend-api\nbudgets:\n  generation: 500\n  session_total: 100000\n${extra}`;

describe("bulkhead continue <session>", () => {
  it("a budget stops the agent → continue --extend resumes the same conversation and completes; a widened scope is refused", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "backend-api"), { "src/index.ts": "export {};\n", "test/index.test.ts": "// test\n" });
    const agent = new URL("../test/agent-continue.sh", import.meta.url).pathname;
    writeFileSync(
      join(dir.path, "bulkhead.yaml"),
      `name: continuation\nrepos:\n  - name: backend-api\n    path: backend-api\nimage:\n  files:\n    rootfs/bin/busybox: /bin/busybox\n    rootfs/agent.sh: ${agent}\n  dockerfile: |\n    FROM scratch\n    COPY rootfs/ /\n    RUN ["/bin/busybox", "--install", "-s", "/bin"]\n    RUN ["/bin/busybox", "mkdir", "-p", "-m", "1777", "/tmp"]\nagent:\n  command: ["/bin/sh", "/agent.sh"]\n`,
    );
    dir.write({
      "handover.yaml": spec(["src/"]),
      "wider.yaml": spec(["src/", "test/"]),
      "other-owner.yaml": spec(["src/"]).replace(
        "  primary_repo: backend-api\n",
        "  primary_repo: backend-api\n  allowed_cross_repo_writes: [frontend]\n",
      ),
      "narrower.yaml": spec(["src/index.ts"]),
    });
    const home = join(dir.path, "home");
    process.env.BULKHEAD_HOME = home;
    let session = "";
    try {
      const dispatched = await cli(["dispatch", join(dir.path, "bulkhead.yaml"), "--spec", join(dir.path, "handover.yaml"), "--json"]);
      const first = JSON.parse(dispatched.out) as { session: string; stoppedBy: string; job: string };
      session = first.session;
      expect(dispatched.code).toBe(2);
      expect(first.stoppedBy).toBe("generation");

      // Wrong usage names the argument (1); an extension needs who approved it.
      const unapproved = await cli(["continue", session, "--extend", "generation=+5000"]);
      expect(unapproved).toMatchObject({ code: 1, err: expect.stringContaining("--approved-by") });
      expect((await cli(["continue", session, "--extend", "speed=+5", "--approved-by", "ana"])).err).toContain("--extend");

      // Widening is refused (2), naming what widens; nothing runs.
      const wider = await cli(["continue", session, "--spec", join(dir.path, "wider.yaml"), "--json"]);
      expect(wider.code).toBe(2);
      expect(JSON.parse(wider.out)).toMatchObject({
        refused: true,
        widened: ["backend-api/test/index.test.ts is outside the first task's scope"],
      });
      const owner = await cli(["continue", session, "--spec", join(dir.path, "other-owner.yaml")]);
      expect(owner).toMatchObject({ code: 2, err: expect.stringContaining('allowed_cross_repo_writes adds "frontend"') });

      const extended = await cli(["continue", session, "--extend", "generation=+5000", "--approved-by", "ana", "--json"]);
      expect(extended.code).toBe(0);
      const result = JSON.parse(extended.out) as Record<string, unknown>;
      // The same conversation, resumed; completed under the raised limit.
      expect(result).toMatchObject({
        mode: "extend",
        resumed: "conv-7f3a",
        conversation: "conv-7f3a",
        exitCode: 0,
        stoppedBy: null,
        completed: true,
        limits: { generation: 5500 },
      });
      expect(result.job).not.toBe(first.job);
      // The extension is in the session's ledger on the host, with who approved it.
      const sessionDir = join(home, "sessions", session);
      const ledgerFile = readdirSync(sessionDir).find((name) => name.startsWith("budget-"))!;
      const events = readFileSync(join(sessionDir, ledgerFile), "utf8")
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as { type: string; kind?: string; amount?: number; approvedBy?: string });
      expect(events.filter((event) => event.type === "extend")).toEqual([
        expect.objectContaining({ kind: "generation", amount: 5000, approvedBy: "ana" }),
      ]);
      // Not stopped any more: a second extension is refused.
      expect((await cli(["continue", session, "--extend", "generation=+1", "--approved-by", "ana"])).code).toBe(2);

      // A narrower continuation runs, as a new conversation.
      const narrower = await cli(["continue", session, "--spec", join(dir.path, "narrower.yaml"), "--json"]);
      expect(narrower.code).toBe(0);
      expect(JSON.parse(narrower.out)).toMatchObject({ mode: "spec", resumed: null, conversation: "conv-new", completed: true });
    } finally {
      if (session) await cli(["session", "rm", session, "--force"]);
      delete process.env.BULKHEAD_HOME;
    }
  });
});

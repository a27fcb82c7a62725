// The continuation decision as a flow, on the real engine: a dispatch stopped by its generation
// budget → `continue --extend` resumes the same agent conversation with the raised budget (the
// extension in the session's ledger, with who approved it) and the task completes; a
// continuation whose spec widens the scope is refused, a narrower one runs. Twice: with the real
// Claude Code CLI sealed to the gateway (a scripted Messages API on 127.0.0.1 behind it), and
// with the project's agent command (a script printing Claude Code's stream-json; no model), which
// resumes the conversation named in BULKHEAD_RESUME, as `claude --resume <id>` would.
import { lstatSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { join } from "node:path";
import { agentImage } from "@bulkhead/agents";
import { normalizeUsage, usageOnly } from "@bulkhead/budget";
import { addUsage, emptyUsage } from "@bulkhead/core";
import { buildImage, defineProject, getSession } from "@bulkhead/sandbox";
import { createScriptedUpstream, createTempDir, initRepo } from "@bulkhead/test-utils";
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

/** True when something accepts connections on the unix socket. */
const answers = (path: string) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(path);
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });

/** The session's budget ledger on the host, as events. */
function ledgerEvents(home: string, session: string) {
  const sessionDir = join(home, "sessions", session);
  const ledgerFile = readdirSync(sessionDir).find((name) => name.startsWith("budget-"))!;
  return readFileSync(join(sessionDir, ledgerFile), "utf8")
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as { type: string; kind?: string; amount?: number; approvedBy?: string });
}

describe("bulkhead continue <session> with the real Claude Code, sealed to the gateway", () => {
  it("the gateway stops the agent at its generation budget → continue --extend resumes the same conversation through a gateway at the same socket and completes", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "backend-api"), { "src/index.ts": "export {};\n" });
    await using upstream = await createScriptedUpstream({
      // A call without tools (a title, a probe) must not eat the script.
      respond: (received) => (Array.isArray(received.body?.tools) && received.body.tools.length > 0 ? undefined : { text: "title" }),
      turns: [
        // Dispatch: one step, which spends the whole generation budget; the next call is refused on the wire.
        {
          toolUses: [{ name: "Write", input: { file_path: "/workspace/backend-api/src/part.ts", content: "export const part = 1;\n" } }],
          usage: { uncachedInputTokens: 900, cacheWrite5mTokens: 300, outputTokens: 100 },
        },
        // The continuation, in the same conversation: the rest of the task, then done.
        {
          toolUses: [{ name: "Write", input: { file_path: "/workspace/backend-api/src/done.ts", content: "export const done = true;\n" } }],
          usage: { uncachedInputTokens: 1_000, cacheReadTokens: 300, outputTokens: 40 },
        },
        { text: "Done: src/part.ts and src/done.ts.", usage: { uncachedInputTokens: 1_100, cacheReadTokens: 300, outputTokens: 12 } },
      ],
    });
    const saved = { upstream: process.env.BULKHEAD_UPSTREAM_ANTHROPIC, key: process.env.ANTHROPIC_API_KEY };
    // dispatch and continue serve the gateway themselves, with the host's key and upstream from the environment.
    process.env.BULKHEAD_UPSTREAM_ANTHROPIC = upstream.url;
    process.env.ANTHROPIC_API_KEY = "sk-ant-continue-test";
    const home = join(dir.path, "home");
    process.env.BULKHEAD_HOME = home;
    let session = "";
    try {
      const { tag } = await buildImage(
        defineProject({
          name: "agents-claude",
          repos: [{ name: "backend-api", path: join(dir.path, "backend-api") }],
          image: agentImage({ agent: "claude-code" }),
        }),
      );
      writeFileSync(
        join(dir.path, "bulkhead.yaml"),
        `name: continue-claude\nrepos:\n  - name: backend-api\n    path: backend-api\nimage:\n  existing: ${tag}\n`,
      );
      writeFileSync(
        join(dir.path, "handover.yaml"),
        spec(["src/"]).replace("generation: 500", "generation: 100").replace("DONE-1", "DONE-2"),
      );
      const dispatched = await cli([
        "dispatch",
        join(dir.path, "bulkhead.yaml"),
        "--spec",
        join(dir.path, "handover.yaml"),
        "--agent",
        "claude-code",
        "--json",
      ]);
      const first = JSON.parse(dispatched.out) as { session: string; job: string; stoppedBy: string; report: { usage: unknown } };
      session = first.session;
      expect(dispatched.code, dispatched.out).toBe(2);
      expect(first.stoppedBy).toBe("generation");
      const box = getSession(session);
      const file = (path: string) => {
        const read = box.readWorkspaceFile("backend-api", path);
        return read.kind === "file" ? read.content.toString("utf8") : undefined;
      };
      expect(file("src/part.ts")).toBe("export const part = 1;\n");
      expect(file("src/done.ts")).toBeUndefined();
      // The refused call never reached the model: one scripted step was used.
      const withTools = () => upstream.requestsFor("anthropic-messages").filter((received) => Array.isArray(received.body?.tools));
      expect(withTools()).toHaveLength(1);
      // dispatch's own gateway socket lives in the session's directory, where continue serves one again.
      const recordFile = join(home, "sessions", session, "dispatch.json");
      const recordText = readFileSync(recordFile, "utf8");
      const record = JSON.parse(recordText) as { gatewaySocket: string; gatewaySocketId: { dev: string; ino: string } };
      expect(record.gatewaySocket).toBe(join(home, "sessions", session, "gateway", "gateway.sock"));
      // The socket's identity, taken before the agent ran: continue connects only to that socket.
      expect(record.gatewaySocketId).toEqual({ dev: expect.stringMatching(/^\d+$/), ino: expect.stringMatching(/^\d+$/) });

      // The socket dispatch recorded, still served (as a gateway of the caller's would be): not
      // replaced, and nothing is booked: the ledger stays unwritten.
      rmSync(record.gatewaySocket, { force: true });
      const squatter = createServer((socket) => socket.destroy());
      await new Promise<void>((resolve) => squatter.listen(record.gatewaySocket, resolve));
      const served = lstatSync(record.gatewaySocket, { bigint: true });
      writeFileSync(recordFile, JSON.stringify({ ...record, gatewaySocketId: { dev: `${served.dev}`, ino: `${served.ino}` } }));
      const busy = await cli(["continue", session, "--extend", "generation=+5000", "--approved-by", "ana", "--json"]);
      await new Promise((resolve) => squatter.close(resolve));
      writeFileSync(recordFile, recordText);
      expect(busy.code).toBe(1);
      expect(JSON.parse(busy.out)).toMatchObject({
        error: { code: "GATEWAY_FAILED", message: expect.stringContaining("a gateway already serves") },
      });
      expect(readdirSync(join(home, "sessions", session)).filter((name) => name.startsWith("budget-"))).toEqual([]);

      // A link planted in the socket's place, to another listening socket: continue never connects
      // through it (the old check did, and refused as if a gateway served there); the link is
      // treated as stale and replaced by the continuation's gateway.
      let decoyConnections = 0;
      const decoy = createServer((socket) => (decoyConnections++, socket.destroy()));
      await new Promise<void>((resolve) => decoy.listen(join(dir.path, "decoy.sock"), resolve));
      symlinkSync(join(dir.path, "decoy.sock"), record.gatewaySocket);
      const before = upstream.requests.length;
      const extended = await cli(["continue", session, "--extend", "generation=+5000", "--approved-by", "ana", "--json"]);
      await new Promise((resolve) => decoy.close(resolve));
      expect(decoyConnections).toBe(0);
      expect(extended.code, extended.out).toBe(0);
      const result = JSON.parse(extended.out) as {
        job: string;
        resumed: string;
        conversation: string;
        report: { usage: unknown; totalTokens: number };
      };
      expect(result).toMatchObject({ mode: "extend", exitCode: 0, stoppedBy: null, completed: true, limits: { generation: 5100 } });
      // The same conversation: Claude Code resumed the session the stopped job opened ...
      expect(result.resumed).toMatch(/^[0-9a-f-]{36}$/);
      expect(result.conversation).toBe(result.resumed);
      expect(result.job).not.toBe(first.job);
      // ... and the model saw the earlier turns: the first task's prompt and its Write of part.ts.
      const continued = upstream.requests.slice(before).filter((received) => Array.isArray(received.body?.tools));
      expect(continued).toHaveLength(2);
      expect(continued[0]!.rawBody).toContain("# Task DONE-2");
      expect(continued[0]!.rawBody).toContain("/workspace/backend-api/src/part.ts");
      expect(continued[0]!.rawBody).toContain("Your budget was raised (generation +5000, approved by ana)");
      expect(file("src/done.ts")).toBe("export const done = true;\n");
      // Every call went through the gateway (it holds the key) and was metered from the upstream's answers.
      expect(new Set(upstream.requests.map((received) => received.headers["x-api-key"]))).toEqual(new Set(["sk-ant-continue-test"]));
      const sent = upstream.requests
        .slice(before)
        .filter((received) => received.sentUsage !== undefined)
        .map((received) => usageOnly(normalizeUsage("anthropic", received.sentUsage)))
        .reduce(addUsage, emptyUsage());
      expect(result.report.usage).toEqual(sent);
      expect(result.report.totalTokens).toBe(sent.inputTokens + sent.outputTokens);
      // The ledger: the dispatch's spend, the extension with who approved it, then the continuation's calls.
      const events = ledgerEvents(home, session);
      expect(events.filter((event) => event.type === "extend")).toEqual([
        expect.objectContaining({ kind: "generation", amount: 5000, approvedBy: "ana" }),
      ]);
      const extendAt = events.findIndex((event) => event.type === "extend");
      expect(extendAt).toBeGreaterThan(0);
      expect(events.length).toBeGreaterThan(extendAt + 1);
      // The gateway that continue served is closed with it: nothing answers at the socket any more.
      expect(await answers(record.gatewaySocket)).toBe(false);

      // The handover reports what the gateways booked per kind, for the whole task (dispatch and
      // continuation): the tool results they charged to the tool-call budget are on the tool-call
      // line (not "0 tokens"), out of the context read, and the kinds add up to the upstream's total.
      const after = JSON.parse(readFileSync(join(home, "sessions", session, "dispatch.json"), "utf8")) as {
        toolResultTokens: number;
        report: { contextReadTokens: number; generationTokens: number; totalTokens: number };
      };
      expect(after.toolResultTokens).toBeGreaterThan(0);
      const all = upstream.requests
        .filter((received) => received.sentUsage !== undefined)
        .map((received) => usageOnly(normalizeUsage("anthropic", received.sentUsage)))
        .reduce(addUsage, emptyUsage());
      expect(after.report.totalTokens).toBe(all.inputTokens + all.outputTokens);
      const handoverPath = join(dir.path, "handover.md");
      const harvested = await cli(["harvest", session, "--out", handoverPath]);
      expect(harvested.code, harvested.err).toBe(0);
      const handover = readFileSync(handoverPath, "utf8");
      const line = (label: string) => Number(new RegExp(`^- ${label}: ([\\d,]+) tokens$`, "m").exec(handover)![1]!.replaceAll(",", ""));
      expect(line("Tool calls")).toBe(after.toolResultTokens);
      expect(line("Context read")).toBe(all.inputTokens - after.toolResultTokens);
      expect(line("Code generation")).toBe(all.outputTokens);
      expect(line("Context read") + line("Code generation") + line("Tool calls")).toBe(line("Total"));
      expect(line("Total")).toBe(all.inputTokens + all.outputTokens);
    } finally {
      if (session) await cli(["session", "rm", session, "--force"]);
      delete process.env.BULKHEAD_HOME;
      for (const [name, value] of [
        ["BULKHEAD_UPSTREAM_ANTHROPIC", saved.upstream],
        ["ANTHROPIC_API_KEY", saved.key],
      ] as const)
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
    }
  });
});

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

      // Wrong usage names the argument (1), in the user's terms; an extension needs who approved it.
      expect(await cli(["continue", "s0000000nothere", "--extend", "generation=+5", "--approved-by", "ana"])).toMatchObject({
        code: 1,
        err: "<session>: there is no session s0000000nothere on this host: see bulkhead session list\n",
      });
      expect((await cli(["continue", "s0000000nothere", "--spec", join(dir.path, "wider.yaml"), "--json"])).out).toContain(
        '"code":"USAGE"',
      );
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

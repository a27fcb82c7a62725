import { readFileSync } from "node:fs";
import type { AgentEvent, AgentProvider } from "@bulkhead/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { claudeCode, codex, commandAgent, formatAgentEvent, MAX_EVENT_LINE_BYTES, summarizeToolUse } from "./index.js";

// Output of the real CLIs against a scripted upstream on 127.0.0.1, recorded as is.
const fixture = (name: string) => readFileSync(new URL(`../test/fixtures/${name}`, import.meta.url), "utf8");
const claudeOutput = fixture("claude-code-2.1.332.stream.jsonl");
const codexOutput = fixture("codex-0.171.0.exec.jsonl");

function parse(provider: AgentProvider, chunks: readonly string[]): AgentEvent[] {
  const parser = provider.createParser();
  return [...chunks.flatMap((chunk) => parser.push(chunk)), ...parser.end()];
}

/** Cuts a text at the given offsets. */
function cut(text: string, offsets: number[]): string[] {
  const points = [...new Set(offsets.map((offset) => offset % (text.length + 1)))].sort((a, b) => a - b);
  return [0, ...points].map((start, index) => text.slice(start, points[index] ?? text.length));
}

describe("agent output parsers", () => {
  it("reads Claude Code's stream-json into init, text, tool use, tool result, usage and result", () => {
    const events = parse(claudeCode(), [claudeOutput]);
    expect(events.map((event) => event.type)).toEqual(["init", "text", "tool-use", "tool-result", "text", "usage", "result"]);
    expect(events[0]).toMatchObject({ type: "init", agentSessionId: "85daff22-075d-4164-99a2-e095dd75cb77" });
    expect(events[2]).toMatchObject({ type: "tool-use", name: "Write", summary: "Write /tmp/i13a/hello.txt" });
    expect(events[3]).toMatchObject({ type: "tool-result", toolUseId: "toolu_1", isError: false });
    // The result line's usage, not the assistant lines' repeated output_tokens: 1.
    expect(events[5]).toMatchObject({ type: "usage", usage: { inputTokens: 250, outputTokens: 27 } });
    expect(events[6]).toMatchObject({ type: "result", ok: true, turns: 2, text: "Done: wrote hello.txt." });
  });

  it("reads codex exec --json into init, text, tool use and result, usage with the cached part inside the input", () => {
    const events = parse(codex(), [codexOutput]);
    expect(events.map((event) => event.type)).toEqual(["init", "error", "text", "tool-use", "tool-result", "text", "usage", "result"]);
    expect(events[3]).toMatchObject({ type: "tool-use", name: "shell", summary: "shell /bin/bash -lc 'echo hi > hello.txt'" });
    expect(events[6]).toMatchObject({ type: "usage", usage: { inputTokens: 20379, uncachedInputTokens: 20379, outputTokens: 15 } });
  });

  it("gives the same events however the output is cut into chunks", () => {
    for (const [provider, output] of [
      [claudeCode(), claudeOutput],
      [codex(), codexOutput],
    ] as const) {
      const whole = parse(provider, [output]);
      fc.assert(
        fc.property(fc.array(fc.nat(), { maxLength: 12 }), (offsets) => {
          expect(parse(provider, cut(output, offsets))).toEqual(whole);
        }),
        { numRuns: 50 },
      );
    }
  });

  it("skips what is not its format, and a line over the size limit, and keeps going", () => {
    const huge = `{"type":"assistant","message":{"content":[{"type":"text","text":"${"x".repeat(MAX_EVENT_LINE_BYTES + 10)}"}]}}\n`;
    const events = parse(claudeCode(), [
      "warning: not json\n",
      "[1,2]\n",
      huge,
      '{"type":"assistant","message":{"content":[{"type":"text","text":"after"}]}}\n',
    ]);
    expect(events).toEqual([{ type: "text", text: "after" }]);
    fc.assert(
      fc.property(fc.string(), (text) => {
        expect(() => parse(claudeCode(), [text])).not.toThrow();
        expect(() => parse(codex(), [text])).not.toThrow();
      }),
    );
  });

  it("summarizes a tool use in one line and formats events for people", () => {
    expect(summarizeToolUse("Write", { file_path: "/workspace/api/src/a.ts", content: "x" })).toBe("Write api/src/a.ts");
    expect(summarizeToolUse("Bash", { command: "npm test\nnpm run lint" })).toBe("Bash npm test…");
    expect(summarizeToolUse("Mystery", { a: 1, b: "text" })).toBe("Mystery text");
    expect(formatAgentEvent({ type: "tool-use", id: "1", name: "Write", input: {}, summary: "Write a.ts" })).toBe("→ Write a.ts");
    expect(formatAgentEvent({ type: "result", ok: false, text: "error_max_turns" })).toBe("✗ error_max_turns");
  });

  it("runs any command with the prompt filled in and in the environment", () => {
    const provider = commandAgent({ command: ["my-agent", "--task", "{prompt}"] });
    const invocation = provider.invocation({ prompt: "do it", gateway: { baseUrl: "http://127.0.0.1:4000", token: "t" } });
    expect(invocation.command).toEqual(["my-agent", "--task", "do it"]);
    expect(invocation.env).toMatchObject({
      BULKHEAD_PROMPT: "do it",
      BULKHEAD_GATEWAY_URL: "http://127.0.0.1:4000",
      BULKHEAD_GATEWAY_TOKEN: "t",
    });
    expect(parse(provider, ["one\ntw", "o\n"])).toEqual([
      { type: "text", text: "one" },
      { type: "text", text: "two" },
    ]);
    expect(() => commandAgent({ command: [] })).toThrow(/command/);
  });

  it("puts the gateway into Codex's config as a provider of its own, never OPENAI_BASE_URL", () => {
    const invocation = codex().invocation({ prompt: "-x", gateway: { baseUrl: "http://127.0.0.1:4000/", token: "tok" }, resume: "abc" });
    expect(invocation.command.slice(0, 3)).toEqual(["codex", "exec", "resume"]);
    expect(invocation.command.slice(-3)).toEqual(["--", "abc", "-x"]);
    expect(invocation.env).not.toHaveProperty("OPENAI_BASE_URL");
    expect(invocation.files[0]?.content).toContain('base_url = "http://127.0.0.1:4000/v1"');
    expect(invocation.files[0]?.content).toContain('wire_api = "responses"');
  });
});

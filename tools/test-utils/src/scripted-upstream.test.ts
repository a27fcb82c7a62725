import { describe, expect, it } from "vitest";
import { createScriptedUpstream } from "./scripted-upstream.js";

const post = (url: string, body: unknown) =>
  fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

/** Parses an SSE body into its events. */
function sse(text: string): { event: string | undefined; data: string }[] {
  return text
    .split("\n\n")
    .filter((frame) => frame.trim() !== "")
    .map((frame) => {
      const lines = frame.split("\n");
      return {
        event: lines.find((line) => line.startsWith("event: "))?.slice(7),
        data: lines.find((line) => line.startsWith("data: "))!.slice(6),
      };
    });
}

describe("createScriptedUpstream", () => {
  it("streams an Anthropic message with a text block and a tool use, in the documented order", async () => {
    await using upstream = await createScriptedUpstream({
      turns: [
        {
          text: ["Hel", "lo"],
          toolUses: [{ name: "Write", input: { path: "a" } }],
          usage: { uncachedInputTokens: 7, cacheReadTokens: 3, outputTokens: 9 },
        },
      ],
    });
    const response = await post(`${upstream.url}/v1/messages`, { model: "claude-x", stream: true, max_tokens: 10, messages: [] });
    const events = sse(await response.text());
    expect(events.map((event) => event.event)).toEqual([
      "message_start",
      "ping",
      "content_block_start",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "content_block_start",
      ...Array(events.length - 10).fill("content_block_delta"),
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    const start = JSON.parse(events[0]!.data);
    expect(start.message.usage).toMatchObject({ input_tokens: 7, cache_read_input_tokens: 3, output_tokens: 1 });
    const delta = JSON.parse(events.at(-2)!.data);
    expect(delta).toMatchObject({ delta: { stop_reason: "tool_use" }, usage: { output_tokens: 9, input_tokens: 7 } });
    const partial = events
      .filter((event) => event.data.includes("input_json_delta"))
      .map((event) => JSON.parse(event.data).delta.partial_json)
      .join("");
    expect(JSON.parse(partial)).toEqual({ path: "a" });
    expect(upstream.requests[0]).toMatchObject({ api: "anthropic-messages", stream: true, sentUsage: { output_tokens: 9 } });
  });

  it("answers count_tokens without taking a turn, and unknown paths with a 404", async () => {
    await using upstream = await createScriptedUpstream({ turns: [{ text: "x" }] });
    const counted = await post(`${upstream.url}/v1/messages/count_tokens`, { model: "m", messages: [] });
    expect(await counted.json()).toHaveProperty("input_tokens");
    expect((await post(`${upstream.url}/v1/nope`, {})).status).toBe(404);
    expect(upstream.pending).toBe(1);
  });

  it("sends the Chat Completions usage chunk only when include_usage is set", async () => {
    await using upstream = await createScriptedUpstream({
      whenEmpty: { text: "hi", usage: { uncachedInputTokens: 4, cacheReadTokens: 6, outputTokens: 2 } },
    });
    const without = sse(await (await post(`${upstream.url}/v1/chat/completions`, { model: "gpt", stream: true, messages: [] })).text());
    expect(without.at(-1)!.data).toBe("[DONE]");
    expect(without.some((event) => event.data.includes('"prompt_tokens"'))).toBe(false);
    const withUsage = sse(
      await (
        await post(`${upstream.url}/v1/chat/completions`, {
          model: "gpt",
          stream: true,
          stream_options: { include_usage: true },
          messages: [],
        })
      ).text(),
    );
    expect(JSON.parse(withUsage.at(-2)!.data).usage).toMatchObject({ prompt_tokens: 10, prompt_tokens_details: { cached_tokens: 6 } });
  });

  it("streams a Responses answer ending in response.completed with usage", async () => {
    await using upstream = await createScriptedUpstream({
      whenEmpty: { text: "hi", usage: { uncachedInputTokens: 1, outputTokens: 2, reasoningTokens: 1 } },
    });
    const events = sse(await (await post(`${upstream.url}/v1/responses`, { model: "gpt", stream: true, input: "x" })).text());
    expect(events[0]!.event).toBe("response.created");
    const completed = JSON.parse(events.at(-1)!.data);
    expect(completed.type).toBe("response.completed");
    expect(completed.response.usage).toMatchObject({ input_tokens: 1, output_tokens: 2, output_tokens_details: { reasoning_tokens: 1 } });
  });

  it("drops a stream after the given number of events", async () => {
    await using upstream = await createScriptedUpstream({ turns: [{ text: "a long answer", chunkChars: 1, dropAfterEvents: 4 }] });
    const response = await post(`${upstream.url}/v1/messages`, { model: "m", stream: true, messages: [] });
    await expect(response.text()).rejects.toThrow();
    await upstream.settled();
    expect(upstream.requests[0]!.sentEvents).toHaveLength(4);
  });
});

import { anthropicDeltaTextBytes } from "@bulkhead/budget";
import type { SseFrame } from "./sse-parser.js";
import {
  dataOf,
  errorType,
  isObject,
  mergeUsage,
  modelField,
  optionalCount,
  readTools,
  sse,
  textOf,
  usageField,
  type FrameInfo,
  type Json,
  type PreparedRequest,
  type StreamState,
  type WireErrorKind,
  type WireFormat,
} from "./wire-format.js";

/** Anthropic's smallest extended-thinking budget. */
const MIN_THINKING_BUDGET = 1024;

function prepare(body: Json): PreparedRequest {
  if (!Array.isArray(body.messages)) throw "messages must be an array";
  const messages = body.messages as unknown[];
  const inputPieces: string[] = [];
  const toolResults: { id: string; text: string }[] = [];
  if (body.system !== undefined) inputPieces.push(textOf(body.system));
  for (const message of messages) {
    if (!isObject(message)) throw "each message must be an object";
    inputPieces.push(typeof message.content === "string" ? message.content : JSON.stringify(message.content ?? ""));
    if (Array.isArray(message.content))
      for (const block of message.content)
        if (isObject(block) && block.type === "tool_result")
          toolResults.push({ id: String(block.tool_use_id), text: textOf(block.content ?? "") });
  }
  const { tools, fingerprints } = readTools(body, (tool) => tool.name, inputPieces);
  const maxTokens = optionalCount(body, "max_tokens");
  return {
    model: typeof body.model === "string" ? body.model : undefined,
    stream: body.stream === true,
    inputPieces,
    toolResults,
    tools: fingerprints,
    maxTokens,
    clientWantsUsage: true,
    modified: false,
    setMaxTokens(value) {
      this.modified = true;
      this.maxTokens = value;
      body.max_tokens = value;
      // The API rejects a thinking budget that is not below max_tokens.
      const thinking = body.thinking;
      if (
        isObject(thinking) &&
        thinking.type === "enabled" &&
        typeof thinking.budget_tokens === "number" &&
        thinking.budget_tokens >= value
      ) {
        if (value - 1 >= MIN_THINKING_BUDGET) body.thinking = { ...thinking, budget_tokens: value - 1 };
        else delete body.thinking;
      }
    },
    disableTools(note) {
      this.modified = true;
      if (tools.length > 0) body.tool_choice = { type: "none" };
      const last = messages.at(-1);
      if (isObject(last) && last.role === "user") {
        const content =
          typeof last.content === "string" ? [{ type: "text", text: last.content }] : Array.isArray(last.content) ? last.content : [];
        last.content = [...content, { type: "text", text: note }];
      } else messages.push({ role: "user", content: [{ type: "text", text: note }] });
    },
  };
}

class AnthropicStream implements StreamState {
  rawUsage: Json | undefined;
  hasInputUsage = false;
  model: string | undefined;
  #openBlock: number | undefined;

  inspect(frame: SseFrame): FrameInfo {
    const info: FrameInfo = { text: undefined, drop: false, terminal: false };
    switch (frame.event) {
      case "ping":
        return info;
      case "message_stop":
        info.terminal = true;
        return info;
      case "content_block_delta":
        // Most frames of a stream: passed on as bytes, decoded only if the meter must count them.
        info.textBytes = anthropicDeltaTextBytes(frame.raw);
        info.text = () => {
          const delta = dataOf(frame)?.delta;
          const text = isObject(delta) ? (delta.text ?? delta.partial_json ?? delta.thinking) : undefined;
          return typeof text === "string" ? text : "";
        };
        return info;
    }
    const data = dataOf(frame);
    if (!data) return info;
    switch (data.type) {
      case "message_start": {
        const message = isObject(data.message) ? data.message : {};
        if (typeof message.model === "string") this.model = message.model;
        this.rawUsage = mergeUsage(undefined, message.usage);
        this.hasInputUsage = this.rawUsage !== undefined;
        break;
      }
      case "content_block_start":
        this.#openBlock = typeof data.index === "number" ? data.index : 0;
        if (isObject(data.content_block) && data.content_block.type === "tool_use") {
          const name = String(data.content_block.name ?? "");
          info.text = () => name;
        }
        break;
      case "content_block_stop":
        this.#openBlock = undefined;
        break;
      case "message_delta":
        // Cumulative: each message_delta repeats the counts so far; nulls mean "not reported".
        this.rawUsage = mergeUsage(this.rawUsage, data.usage);
        break;
      case "message_stop":
        info.terminal = true;
        break;
    }
    return info;
  }

  cutUsage(deliveredOutputTokens: number, inputEstimate: number): Json {
    const usage: Json = this.hasInputUsage ? { ...this.rawUsage } : { input_tokens: inputEstimate };
    usage.output_tokens = deliveredOutputTokens;
    return usage;
  }

  closing(usage: Json): string {
    const stop = this.#openBlock === undefined ? "" : sse("content_block_stop", { type: "content_block_stop", index: this.#openBlock });
    this.#openBlock = undefined;
    return (
      stop +
      sse("message_delta", { type: "message_delta", delta: { stop_reason: "max_tokens", stop_sequence: null }, usage }) +
      sse("message_stop", { type: "message_stop" })
    );
  }

  errorFrame(kind: WireErrorKind, message: string): string {
    return sse("error", { type: "error", error: { type: errorType("anthropic", kind), message } });
  }
}

/** Anthropic Messages: `POST /v1/messages`, streamed (SSE) or not. */
export const anthropicMessages: WireFormat = {
  api: "anthropic-messages",
  provider: "anthropic",
  prepare,
  usageOf: usageField,
  modelOf: modelField,
  createStream: () => new AnthropicStream(),
};

/** Anthropic `POST /v1/messages/count_tokens`: authenticated and forwarded, never metered (it is free). */
export const anthropicCountTokens: WireFormat = {
  api: "anthropic-count-tokens",
  provider: "anthropic",
  prepare(body) {
    const prepared = prepare(body);
    return { ...prepared, stream: false, toolResults: [] };
  },
  usageOf: () => undefined,
  modelOf: () => undefined,
  createStream: () => new AnthropicStream(),
};

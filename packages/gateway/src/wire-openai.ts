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
import type { SseFrame } from "./sse-parser.js";

// Searched in a frame's bytes, so most chunks are never decoded: a field in the data is in the bytes too.
const DONE = Buffer.from("[DONE]");
const USAGE = Buffer.from('"usage":{');

/** Tool outputs in a Responses input: the item types that carry a tool's result back to the model. */
const TOOL_OUTPUT_ITEMS = new Set(["function_call_output", "custom_tool_call_output", "local_shell_call_output", "computer_call_output"]);

function prepareResponses(body: Json): PreparedRequest {
  const inputPieces: string[] = [];
  const toolResults: { id: string; text: string }[] = [];
  if (typeof body.instructions === "string") inputPieces.push(body.instructions);
  if (typeof body.input === "string") inputPieces.push(body.input);
  else if (Array.isArray(body.input)) {
    for (const item of body.input) {
      if (!isObject(item)) throw "each input item must be an object";
      inputPieces.push(JSON.stringify(item));
      if (typeof item.type === "string" && TOOL_OUTPUT_ITEMS.has(item.type))
        toolResults.push({ id: String(item.call_id ?? item.id), text: textOf(item.output ?? "") });
    }
  } else if (body.input !== undefined) throw "input must be a string or an array of items";
  const { tools, fingerprints } = readTools(body, (tool) => tool.name, inputPieces);
  return {
    model: typeof body.model === "string" ? body.model : undefined,
    stream: body.stream === true,
    inputPieces,
    toolResults,
    tools: fingerprints,
    maxTokens: optionalCount(body, "max_output_tokens"),
    clientWantsUsage: true,
    modified: false,
    setMaxTokens(value) {
      this.modified = true;
      this.maxTokens = value;
      body.max_output_tokens = value;
    },
    disableTools(note) {
      this.modified = true;
      if (tools.length > 0) body.tool_choice = "none";
      const items = typeof body.input === "string" ? [{ role: "user", content: body.input }] : Array.isArray(body.input) ? body.input : [];
      body.input = [...items, { type: "message", role: "user", content: [{ type: "input_text", text: note }] }];
    },
  };
}

interface OpenItem {
  item: Json;
  /** Text per content part still open, by content index. */
  parts: Map<number, string>;
  arguments: string;
}

class ResponsesStream implements StreamState {
  rawUsage: Json | undefined;
  hasInputUsage = false;
  model: string | undefined;
  #response: Json = {};
  #sequence = 0;
  readonly #done: unknown[] = [];
  /** Output items added and not yet done, by output index: a cut stream closes them, as the SDKs require. */
  readonly #open = new Map<number, OpenItem>();
  /** Deltas delivered since an item opened, decoded only if a cut stream must close their items. */
  #deltas: { event: string; data: () => Json; text: () => string }[] = [];

  inspect(frame: SseFrame): FrameInfo {
    const info: FrameInfo = { text: undefined, drop: false, terminal: false };
    if (frame.event?.endsWith(".delta")) {
      // Most frames of a stream: passed on as bytes, decoded only when counted or closed.
      let decoded: Json | undefined;
      const data = () => (decoded ??= dataOf(frame) ?? {});
      const text = () => (typeof data().delta === "string" ? (data().delta as string) : "");
      info.text = text;
      info.delivered = () => {
        this.#sequence++;
        this.#deltas.push({ event: frame.event!, data, text });
      };
      return info;
    }
    const data = dataOf(frame);
    if (!data) return info;
    if (typeof data.sequence_number === "number") this.#sequence = data.sequence_number;
    const type = data.type;
    const index = typeof data.output_index === "number" ? data.output_index : 0;
    switch (type) {
      case "response.created":
      case "response.in_progress":
        if (isObject(data.response)) {
          this.#response = data.response;
          if (typeof data.response.model === "string") this.model = data.response.model;
        }
        break;
      case "response.output_item.added":
        if (isObject(data.item)) this.#open.set(index, { item: data.item, parts: new Map(), arguments: "" });
        break;
      case "response.content_part.added": {
        const part = typeof data.content_index === "number" ? data.content_index : 0;
        this.#open.get(index)?.parts.set(part, "");
        break;
      }
      case "response.content_part.done":
        this.#open.get(index)?.parts.delete(typeof data.content_index === "number" ? data.content_index : 0);
        break;
      case "response.output_item.done":
        this.#open.delete(index);
        this.#done.push(data.item);
        // Deltas are kept only while some item is open: memory follows the open items, not the stream.
        if (this.#open.size === 0) this.#deltas = [];
        break;
      case "response.completed":
      case "response.incomplete":
      case "response.failed":
        if (isObject(data.response)) {
          if (typeof data.response.model === "string") this.model = data.response.model;
          this.rawUsage = mergeUsage(undefined, data.response.usage);
          this.hasInputUsage = this.rawUsage !== undefined;
        }
        info.terminal = true;
        break;
    }
    return info;
  }

  cutUsage(deliveredOutputTokens: number, inputEstimate: number): Json {
    return { input_tokens: inputEstimate, output_tokens: deliveredOutputTokens, total_tokens: inputEstimate + deliveredOutputTokens };
  }

  closing(usage: Json): string {
    // Replay the delivered deltas into the open items they belong to.
    for (const delta of this.#deltas) {
      const data = delta.data();
      const open = this.#open.get(typeof data.output_index === "number" ? data.output_index : 0);
      if (!open) continue;
      if (delta.event === "response.output_text.delta") {
        const part = typeof data.content_index === "number" ? data.content_index : 0;
        if (open.parts.has(part)) open.parts.set(part, open.parts.get(part)! + delta.text());
      } else if (delta.event === "response.function_call_arguments.delta") open.arguments += delta.text();
    }
    this.#deltas = [];
    let frames = "";
    const at = (type: string, data: Json) => (frames += sse(type, { type, sequence_number: ++this.#sequence, ...data }));
    for (const [outputIndex, open] of [...this.#open.entries()].sort(([left], [right]) => left - right)) {
      const itemId = open.item.id;
      let item: Json = { ...open.item, status: "incomplete" };
      if (open.item.type === "message") {
        const content = Array.isArray(open.item.content) ? [...(open.item.content as unknown[])] : [];
        for (const [contentIndex, text] of [...open.parts.entries()].sort(([left], [right]) => left - right)) {
          const part = { type: "output_text", text, annotations: [] };
          at("response.output_text.done", { item_id: itemId, output_index: outputIndex, content_index: contentIndex, text, logprobs: [] });
          at("response.content_part.done", { item_id: itemId, output_index: outputIndex, content_index: contentIndex, part });
          content[contentIndex] = part;
        }
        item = { ...item, content };
      } else if (open.item.type === "function_call") {
        at("response.function_call_arguments.done", { item_id: itemId, output_index: outputIndex, arguments: open.arguments });
        item = { ...item, arguments: open.arguments };
      }
      at("response.output_item.done", { output_index: outputIndex, item });
      this.#done.push(item);
    }
    this.#open.clear();
    at("response.completed", {
      response: { ...this.#response, status: "incomplete", incomplete_details: { reason: "max_output_tokens" }, output: this.#done, usage },
    });
    return frames;
  }

  errorFrame(kind: WireErrorKind, message: string): string {
    return sse("error", { type: "error", code: errorType("openai", kind), message, param: null, sequence_number: ++this.#sequence });
  }
}

/** OpenAI Responses: `POST /v1/responses`, streamed (SSE) or not. */
export const openAiResponses: WireFormat = {
  api: "openai-responses",
  provider: "openai",
  prepare: prepareResponses,
  usageOf: usageField,
  modelOf: modelField,
  createStream: () => new ResponsesStream(),
};

function prepareChat(body: Json): PreparedRequest {
  if (!Array.isArray(body.messages)) throw "messages must be an array";
  const messages = body.messages as unknown[];
  const inputPieces: string[] = [];
  const toolResults: { id: string; text: string }[] = [];
  for (const message of messages) {
    if (!isObject(message)) throw "each message must be an object";
    inputPieces.push(JSON.stringify(message));
    if (message.role === "tool") toolResults.push({ id: String(message.tool_call_id), text: textOf(message.content ?? "") });
  }
  // Chat tools name their function inside it.
  const { tools, fingerprints } = readTools(body, (tool) => (isObject(tool.function) ? tool.function.name : tool.name), inputPieces);
  const streamOptions = isObject(body.stream_options) ? body.stream_options : undefined;
  const clientWantsUsage = streamOptions?.include_usage === true;
  const field = body.max_completion_tokens === undefined && body.max_tokens !== undefined ? "max_tokens" : "max_completion_tokens";
  const stream = body.stream === true;
  // Usage in a stream comes only in a last chunk the client must ask for: the gateway always
  // asks, and drops that chunk again when the client did not.
  if (stream && !clientWantsUsage) body.stream_options = { ...streamOptions, include_usage: true };
  return {
    model: typeof body.model === "string" ? body.model : undefined,
    stream,
    inputPieces,
    toolResults,
    tools: fingerprints,
    maxTokens: optionalCount(body, field),
    clientWantsUsage,
    modified: stream && !clientWantsUsage,
    setMaxTokens(value) {
      this.modified = true;
      this.maxTokens = value;
      body[field] = value;
    },
    disableTools(note) {
      this.modified = true;
      if (tools.length > 0) body.tool_choice = "none";
      messages.push({ role: "user", content: note });
    },
  };
}

class ChatStream implements StreamState {
  rawUsage: Json | undefined;
  hasInputUsage = false;
  model: string | undefined;
  #id = "chatcmpl-bulkhead";
  #created = 0;
  #seen = false;
  readonly #clientWantsUsage: boolean;

  constructor(clientWantsUsage: boolean) {
    this.#clientWantsUsage = clientWantsUsage;
  }

  inspect(frame: SseFrame): FrameInfo {
    const info: FrameInfo = { text: undefined, drop: false, terminal: false };
    if (frame.raw.includes(DONE) && frame.data === "[DONE]") {
      info.terminal = true;
      return info;
    }
    // A chunk is decoded now only when it may carry usage (or is the first, for the ids); the
    // others pass on as bytes and are decoded only when the meter counts them.
    if (this.#seen && !frame.raw.includes(USAGE)) {
      info.text = () => chatText(dataOf(frame));
      return info;
    }
    this.#seen = true;
    const data = dataOf(frame);
    if (!data) return info;
    if (typeof data.id === "string") this.#id = data.id;
    if (typeof data.created === "number") this.#created = data.created;
    if (typeof data.model === "string") this.model = data.model;
    if (isObject(data.usage)) {
      this.rawUsage = mergeUsage(undefined, data.usage);
      this.hasInputUsage = true;
      // The usage chunk (no choices) is the gateway's own request unless the client asked for it.
      if (!this.#clientWantsUsage && Array.isArray(data.choices) && data.choices.length === 0) info.drop = true;
    }
    const text = chatText(data);
    if (text !== "") info.text = () => text;
    return info;
  }

  cutUsage(deliveredOutputTokens: number, inputEstimate: number): Json {
    return { prompt_tokens: inputEstimate, completion_tokens: deliveredOutputTokens, total_tokens: inputEstimate + deliveredOutputTokens };
  }

  closing(usage: Json): string {
    const base = { id: this.#id, object: "chat.completion.chunk", created: this.#created, model: this.model ?? "" };
    return (
      sse(undefined, { ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: "length" }] }) +
      (this.#clientWantsUsage ? sse(undefined, { ...base, choices: [], usage }) : "") +
      sse(undefined, "[DONE]")
    );
  }

  errorFrame(kind: WireErrorKind, message: string): string {
    return sse(undefined, { error: { message, type: errorType("openai", kind), code: null, param: null } });
  }
}

/** The generated text of a chunk: content, reasoning, tool names and arguments. */
function chatText(data: Json | undefined): string {
  const choice = data && Array.isArray(data.choices) && isObject(data.choices[0]) ? data.choices[0] : undefined;
  const delta = choice && isObject(choice.delta) ? choice.delta : undefined;
  if (!delta) return "";
  let text = typeof delta.content === "string" ? delta.content : "";
  if (typeof delta.reasoning_content === "string") text += delta.reasoning_content;
  if (Array.isArray(delta.tool_calls))
    for (const call of delta.tool_calls)
      if (isObject(call) && isObject(call.function)) text += `${String(call.function.name ?? "")}${String(call.function.arguments ?? "")}`;
  return text;
}

/** OpenAI Chat Completions: `POST /v1/chat/completions`, streamed (SSE) or not. */
export const openAiChat: WireFormat = {
  api: "openai-chat",
  provider: "openai",
  prepare: prepareChat,
  usageOf: usageField,
  modelOf: modelField,
  createStream: (prepared) => new ChatStream(prepared.clientWantsUsage),
};

import { randomBytes } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * A scripted model API on 127.0.0.1 for tests: it speaks the Anthropic Messages wire format
 * (`POST /v1/messages`, streaming SSE and not, `POST /v1/messages/count_tokens`) and OpenAI's
 * Responses (`POST /v1/responses`) and Chat Completions (`POST /v1/chat/completions`), streaming
 * and not. It replays a script of turns (text, tool uses, usage), records every request it
 * received (headers and body) and can hang or drop a connection mid-stream on demand.
 *
 * Paths are also accepted without the `/v1` prefix (`/messages`, `/responses`,
 * `/chat/completions`), since some clients put `/v1` in their base URL.
 *
 * @example
 * await using upstream = await createScriptedUpstream({
 *   turns: [{ toolUses: [{ name: "Write", input: { file_path: "a.txt", content: "hi" } }] }, { text: "Done." }],
 * });
 * // point a client at upstream.url; afterwards:
 * upstream.requests[0].headers["x-api-key"]; upstream.requests[1].sentUsage;
 */

/** A usage the upstream reports, in neutral terms; each API renders it in its own fields. */
export interface ScriptedUsage {
  /**
   * Prompt tokens neither read from nor written to the cache (Anthropic's `input_tokens`).
   * OpenAI's `prompt_tokens` / `input_tokens` are this plus `cacheReadTokens` plus the writes.
   * @default ceil(request body bytes / 4)
   */
  uncachedInputTokens?: number;
  /** @default 0 */
  cacheReadTokens?: number;
  /** Anthropic `cache_creation.ephemeral_5m_input_tokens`; OpenAI `cache_write_tokens` (with the 1h part). @default 0 */
  cacheWrite5mTokens?: number;
  /** Anthropic `cache_creation.ephemeral_1h_input_tokens`. @default 0 */
  cacheWrite1hTokens?: number;
  /** @default ceil(generated characters / 4), at least 1 */
  outputTokens?: number;
  /** OpenAI `reasoning_tokens` (part of the output). @default 0 */
  reasoningTokens?: number;
}

/** A tool call the scripted model makes. */
export interface ScriptedToolUse {
  /** @default a random `toolu_…` / `call_…` id */
  id?: string;
  name: string;
  input: Record<string, unknown>;
}

/** One answer of the scripted model. */
export interface ScriptedTurn {
  /**
   * What the model says: a string (streamed in deltas of `chunkChars`) or the exact deltas.
   * @default "" (no text block) when there are tool uses, else "OK."
   */
  text?: string | readonly string[];
  /** Characters per streamed text delta when `text` is a string. @default 16 */
  chunkChars?: number;
  /** Tool calls, after the text; the stop reason becomes `tool_use` / `tool_calls`. */
  toolUses?: readonly ScriptedToolUse[];
  /** The reported usage. */
  usage?: ScriptedUsage;
  /**
   * Replaces the usage object sent, as is (Anthropic: also in `message_delta`; OpenAI: the
   * `usage` field), to send shapes the neutral form cannot say (nulls, extra fields).
   */
  rawUsage?: Record<string, unknown>;
  /**
   * Anthropic streams: what `message_delta.usage` carries. `"cumulative"` (the API today) repeats
   * the input and cache counts beside the final `output_tokens`; `"output"` sends only that.
   * @default "cumulative"
   */
  deltaUsage?: "cumulative" | "output";
  /** The model id in the response. @default the request's `model` */
  model?: string;
  /** Anthropic `stop_reason`. @default "tool_use" with tool uses, else "end_turn" */
  stopReason?: string;
  /** Answer with this HTTP status and an API-format error instead of a response. */
  error?: { status: number; type?: string; message?: string };
  /** Never answer: not even the status line. */
  hang?: boolean;
  /** Streams only: write this many SSE events, then stop writing but keep the connection open. */
  stallAfterEvents?: number;
  /** Streams only: write this many SSE events, then destroy the connection. */
  dropAfterEvents?: number;
  /** Streams only: wait this long between events, in ms. @default 0 */
  eventDelayMs?: number;
}

/** Which API a request was for. */
export type ScriptedApi = "anthropic-messages" | "anthropic-count-tokens" | "openai-responses" | "openai-chat" | "unknown";

/** A request the upstream received, with what it answered. */
export interface RecordedRequest {
  api: ScriptedApi;
  method: string;
  /** The path with its query string. */
  path: string;
  headers: IncomingHttpHeaders;
  /** The raw body, as received. */
  rawBody: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  body: Record<string, unknown> | undefined;
  /** Whether the request asked for a stream. */
  stream: boolean;
  /** The turn answered (undefined for count_tokens, unknown paths and errors). */
  turn: ScriptedTurn | undefined;
  /** The usage object exactly as the upstream put it on the wire (for streams: the final one). */
  sentUsage: Record<string, unknown> | undefined;
  /** For streams: every SSE event written, in order (`event` name and parsed `data`). */
  sentEvents: { event: string | undefined; data: unknown }[];
  /** True when the client closed the connection before the response ended. */
  clientClosed: boolean;
  /** True once the response ended (or was dropped or closed). */
  done: boolean;
}

export interface ScriptedUpstreamOptions {
  /** Turns answered in order, one per model request (count_tokens takes none). */
  turns?: readonly ScriptedTurn[];
  /**
   * Chooses an answer before the queue: return a turn to answer with it (the queue is not
   * consumed), or undefined to take the next queued turn. For extra calls a client makes
   * (a title, a quota probe) that must not eat the script.
   */
  respond?: (request: RecordedRequest) => ScriptedTurn | undefined;
  /** The answer once the queue is empty. @default { text: "OK." } */
  whenEmpty?: ScriptedTurn;
  /** The input token count `count_tokens` answers. @default ceil(body bytes / 4) */
  countTokens?: (request: RecordedRequest) => number;
}

/** A started scripted upstream; `close()` or `await using` stops it. */
export interface ScriptedUpstream extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`, without a trailing slash and without `/v1`. */
  readonly url: string;
  /** Every request received, in order. */
  readonly requests: RecordedRequest[];
  /** Requests for one API only. */
  requestsFor(api: ScriptedApi): RecordedRequest[];
  /** Appends turns to the queue. */
  enqueue(...turns: ScriptedTurn[]): void;
  /** Turns still queued. */
  readonly pending: number;
  /** Resolves when every request received so far has ended. */
  settled(): Promise<void>;
  /** Stops listening and destroys open connections (hanging ones included). Idempotent. */
  close(): Promise<void>;
}

const DEFAULT_TURN: ScriptedTurn = { text: "OK." };

function neutral(turn: ScriptedTurn, request: RecordedRequest, generatedChars: number): Required<ScriptedUsage> {
  const usage = turn.usage ?? {};
  return {
    uncachedInputTokens: usage.uncachedInputTokens ?? Math.ceil(Buffer.byteLength(request.rawBody) / 4),
    cacheReadTokens: usage.cacheReadTokens ?? 0,
    cacheWrite5mTokens: usage.cacheWrite5mTokens ?? 0,
    cacheWrite1hTokens: usage.cacheWrite1hTokens ?? 0,
    outputTokens: usage.outputTokens ?? Math.max(1, Math.ceil(generatedChars / 4)),
    reasoningTokens: usage.reasoningTokens ?? 0,
  };
}

function anthropicUsage(usage: Required<ScriptedUsage>): Record<string, unknown> {
  return {
    input_tokens: usage.uncachedInputTokens,
    cache_creation_input_tokens: usage.cacheWrite5mTokens + usage.cacheWrite1hTokens,
    cache_read_input_tokens: usage.cacheReadTokens,
    cache_creation: { ephemeral_5m_input_tokens: usage.cacheWrite5mTokens, ephemeral_1h_input_tokens: usage.cacheWrite1hTokens },
    output_tokens: usage.outputTokens,
    service_tier: "standard",
  };
}

function promptTokens(usage: Required<ScriptedUsage>): number {
  return usage.uncachedInputTokens + usage.cacheReadTokens + usage.cacheWrite5mTokens + usage.cacheWrite1hTokens;
}

function responsesUsage(usage: Required<ScriptedUsage>): Record<string, unknown> {
  const input = promptTokens(usage);
  const writes = usage.cacheWrite5mTokens + usage.cacheWrite1hTokens;
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: usage.cacheReadTokens, ...(writes > 0 ? { cache_write_tokens: writes } : {}) },
    output_tokens: usage.outputTokens,
    output_tokens_details: { reasoning_tokens: usage.reasoningTokens },
    total_tokens: input + usage.outputTokens,
  };
}

function chatUsage(usage: Required<ScriptedUsage>): Record<string, unknown> {
  const input = promptTokens(usage);
  const writes = usage.cacheWrite5mTokens + usage.cacheWrite1hTokens;
  return {
    prompt_tokens: input,
    completion_tokens: usage.outputTokens,
    total_tokens: input + usage.outputTokens,
    prompt_tokens_details: { cached_tokens: usage.cacheReadTokens, audio_tokens: 0, ...(writes > 0 ? { cache_write_tokens: writes } : {}) },
    completion_tokens_details: { reasoning_tokens: usage.reasoningTokens, audio_tokens: 0 },
  };
}

function deltas(turn: ScriptedTurn, hasTools: boolean): string[] {
  const text = turn.text ?? (hasTools ? "" : "OK.");
  if (typeof text !== "string") return [...text];
  const size = Math.max(1, turn.chunkChars ?? 16);
  const parts: string[] = [];
  for (let index = 0; index < text.length; index += size) parts.push(text.slice(index, index + size));
  return parts;
}

const id = (prefix: string) => `${prefix}${randomBytes(12).toString("hex")}`;

/** Splits a JSON text in a few pieces, as the API streams tool input. */
function jsonPieces(json: string): string[] {
  const size = Math.max(1, Math.ceil(json.length / 3));
  const pieces: string[] = [];
  for (let index = 0; index < json.length; index += size) pieces.push(json.slice(index, index + size));
  return pieces.length === 0 ? [""] : pieces;
}

function classify(method: string, path: string): ScriptedApi {
  if (method !== "POST") return "unknown";
  const bare = path.split("?")[0]!.replace(/^\/v1(?=\/)/, "");
  if (bare === "/messages") return "anthropic-messages";
  if (bare === "/messages/count_tokens") return "anthropic-count-tokens";
  if (bare === "/responses") return "openai-responses";
  if (bare === "/chat/completions") return "openai-chat";
  return "unknown";
}

function errorBody(api: ScriptedApi, status: number, type: string, message: string): Record<string, unknown> {
  if (api === "openai-responses" || api === "openai-chat") return { error: { message, type, code: null, param: null } };
  return { type: "error", error: { type, message } };
}

/**
 * Starts a scripted upstream on 127.0.0.1 (a free port).
 *
 * Every stream is written exactly as the provider documents it. Anthropic: `message_start`
 * (usage with input and cache counts, `output_tokens: 1`), `ping`, then per block
 * `content_block_start` / `content_block_delta` (`text_delta`, or `input_json_delta` for a
 * tool use) / `content_block_stop`, then `message_delta` (stop reason and usage) and
 * `message_stop`. Responses: `response.created`, `response.in_progress`, output items with their
 * parts and deltas, `response.completed` with usage. Chat Completions: chunks, a finish chunk, a
 * usage chunk only when `stream_options.include_usage` is set, then `data: [DONE]`.
 */
export async function createScriptedUpstream(options: ScriptedUpstreamOptions = {}): Promise<ScriptedUpstream> {
  const queue: ScriptedTurn[] = [...(options.turns ?? [])];
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const open = new Set<Promise<void>>();

  const handle = async (request: IncomingMessage, response: ServerResponse, record: RecordedRequest) => {
    response.on("close", () => {
      if (!response.writableFinished) record.clientClosed = true;
    });
    const reply = (status: number, body: unknown) => {
      response.writeHead(status, { "content-type": "application/json", "request-id": id("req_") });
      response.end(JSON.stringify(body));
    };
    if (record.api === "unknown") {
      reply(404, errorBody("anthropic-messages", 404, "not_found_error", `scripted upstream: no route ${record.method} ${record.path}`));
      return;
    }
    if (record.body === undefined) {
      reply(400, errorBody(record.api, 400, "invalid_request_error", "scripted upstream: the body is not JSON"));
      return;
    }
    if (record.api === "anthropic-count-tokens") {
      const tokens = options.countTokens?.(record) ?? Math.ceil(Buffer.byteLength(record.rawBody) / 4);
      reply(200, { input_tokens: tokens });
      return;
    }
    const turn = options.respond?.(record) ?? queue.shift() ?? options.whenEmpty ?? DEFAULT_TURN;
    record.turn = turn;
    if (turn.hang) return; // the connection stays open until the client or close() ends it
    if (turn.error) {
      const type = turn.error.type ?? (turn.error.status === 429 ? "rate_limit_error" : "api_error");
      reply(turn.error.status, errorBody(record.api, turn.error.status, type, turn.error.message ?? "scripted upstream error"));
      return;
    }
    const model = turn.model ?? (typeof record.body.model === "string" ? record.body.model : "scripted-model");
    const tools = (turn.toolUses ?? []).map((tool) => ({
      ...tool,
      id: tool.id ?? id(record.api === "anthropic-messages" ? "toolu_" : "call_"),
    }));
    const textDeltas = deltas(turn, tools.length > 0);
    const text = textDeltas.join("");
    const generatedChars = text.length + tools.reduce((sum, tool) => sum + JSON.stringify(tool.input).length + tool.name.length, 0);
    const usage = neutral(turn, record, generatedChars);

    if (!record.stream) {
      let body: Record<string, unknown>;
      if (record.api === "anthropic-messages") {
        const sent = turn.rawUsage ?? anthropicUsage(usage);
        record.sentUsage = sent;
        body = {
          id: id("msg_"),
          type: "message",
          role: "assistant",
          model,
          content: [
            ...(text === "" ? [] : [{ type: "text", text }]),
            ...tools.map((tool) => ({ type: "tool_use", id: tool.id, name: tool.name, input: tool.input })),
          ],
          stop_reason: turn.stopReason ?? (tools.length > 0 ? "tool_use" : "end_turn"),
          stop_sequence: null,
          usage: sent,
        };
      } else if (record.api === "openai-chat") {
        const sent = turn.rawUsage ?? chatUsage(usage);
        record.sentUsage = sent;
        body = {
          id: id("chatcmpl-"),
          object: "chat.completion",
          created: Math.floor(Date.now() / 1000),
          model,
          choices: [
            {
              index: 0,
              message: {
                role: "assistant",
                content: text === "" && tools.length > 0 ? null : text,
                refusal: null,
                ...(tools.length > 0
                  ? {
                      tool_calls: tools.map((tool) => ({
                        id: tool.id,
                        type: "function",
                        function: { name: tool.name, arguments: JSON.stringify(tool.input) },
                      })),
                    }
                  : {}),
              },
              logprobs: null,
              finish_reason: tools.length > 0 ? "tool_calls" : "stop",
            },
          ],
          usage: sent,
        };
      } else {
        const sent = turn.rawUsage ?? responsesUsage(usage);
        record.sentUsage = sent;
        body = responseObject(id("resp_"), model, "completed", responsesOutput(text, tools), sent);
      }
      reply(200, body);
      return;
    }

    // A stream: every event is written as `event:`/`data:` (OpenAI Chat: `data:` only).
    response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    response.flushHeaders();
    const events: { event: string | undefined; data: unknown }[] = [];
    const emit = (event: string | undefined, data: unknown) => events.push({ event, data });
    if (record.api === "anthropic-messages") {
      const full = anthropicUsage(usage);
      const start = turn.rawUsage ? { ...turn.rawUsage, output_tokens: 1 } : { ...full, output_tokens: 1 };
      const messageId = id("msg_");
      emit("message_start", {
        type: "message_start",
        message: {
          id: messageId,
          type: "message",
          role: "assistant",
          model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: start,
        },
      });
      emit("ping", { type: "ping" });
      let index = 0;
      if (textDeltas.length > 0) {
        emit("content_block_start", { type: "content_block_start", index, content_block: { type: "text", text: "" } });
        for (const delta of textDeltas)
          emit("content_block_delta", { type: "content_block_delta", index, delta: { type: "text_delta", text: delta } });
        emit("content_block_stop", { type: "content_block_stop", index });
        index++;
      }
      for (const tool of tools) {
        emit("content_block_start", {
          type: "content_block_start",
          index,
          content_block: { type: "tool_use", id: tool.id, name: tool.name, input: {} },
        });
        for (const piece of jsonPieces(JSON.stringify(tool.input)))
          emit("content_block_delta", { type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: piece } });
        emit("content_block_stop", { type: "content_block_stop", index });
        index++;
      }
      const final =
        turn.rawUsage ??
        ((turn.deltaUsage ?? "cumulative") === "cumulative"
          ? {
              input_tokens: full.input_tokens,
              cache_creation_input_tokens: full.cache_creation_input_tokens,
              cache_read_input_tokens: full.cache_read_input_tokens,
              output_tokens: full.output_tokens,
            }
          : { output_tokens: full.output_tokens });
      record.sentUsage = turn.rawUsage ?? { ...full };
      emit("message_delta", {
        type: "message_delta",
        delta: { stop_reason: turn.stopReason ?? (tools.length > 0 ? "tool_use" : "end_turn"), stop_sequence: null },
        usage: final,
      });
      emit("message_stop", { type: "message_stop" });
    } else if (record.api === "openai-chat") {
      const includeUsage = (record.body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
      const chatId = id("chatcmpl-");
      const created = Math.floor(Date.now() / 1000);
      const chunk = (delta: Record<string, unknown>, finish: string | null) => ({
        id: chatId,
        object: "chat.completion.chunk",
        created,
        model,
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
        ...(includeUsage ? { usage: null } : {}),
      });
      emit(undefined, chunk({ role: "assistant", content: "", refusal: null }, null));
      for (const delta of textDeltas) emit(undefined, chunk({ content: delta }, null));
      tools.forEach((tool, index) => {
        emit(
          undefined,
          chunk({ tool_calls: [{ index, id: tool.id, type: "function", function: { name: tool.name, arguments: "" } }] }, null),
        );
        for (const piece of jsonPieces(JSON.stringify(tool.input)))
          emit(undefined, chunk({ tool_calls: [{ index, function: { arguments: piece } }] }, null));
      });
      emit(undefined, chunk({}, tools.length > 0 ? "tool_calls" : "stop"));
      const sent = turn.rawUsage ?? chatUsage(usage);
      if (includeUsage) {
        record.sentUsage = sent;
        emit(undefined, { id: chatId, object: "chat.completion.chunk", created, model, choices: [], usage: sent });
      }
      emit(undefined, "[DONE]");
    } else {
      const responseId = id("resp_");
      let sequence = 0;
      const at = (type: string, data: Record<string, unknown>) => emit(type, { type, sequence_number: sequence++, ...data });
      at("response.created", { response: responseObject(responseId, model, "in_progress", [], null) });
      at("response.in_progress", { response: responseObject(responseId, model, "in_progress", [], null) });
      const output = responsesOutput(text, tools);
      output.forEach((item, outputIndex) => {
        if (item.type === "message") {
          const itemId = item.id as string;
          at("response.output_item.added", { output_index: outputIndex, item: { ...item, status: "in_progress", content: [] } });
          at("response.content_part.added", {
            item_id: itemId,
            output_index: outputIndex,
            content_index: 0,
            part: { type: "output_text", text: "", annotations: [] },
          });
          for (const delta of textDeltas)
            at("response.output_text.delta", { item_id: itemId, output_index: outputIndex, content_index: 0, delta, logprobs: [] });
          at("response.output_text.done", { item_id: itemId, output_index: outputIndex, content_index: 0, text, logprobs: [] });
          at("response.content_part.done", {
            item_id: itemId,
            output_index: outputIndex,
            content_index: 0,
            part: { type: "output_text", text, annotations: [] },
          });
        } else {
          const itemId = item.id as string;
          at("response.output_item.added", { output_index: outputIndex, item: { ...item, arguments: "", status: "in_progress" } });
          for (const piece of jsonPieces(item.arguments as string))
            at("response.function_call_arguments.delta", { item_id: itemId, output_index: outputIndex, delta: piece });
          at("response.function_call_arguments.done", { item_id: itemId, output_index: outputIndex, arguments: item.arguments });
        }
        at("response.output_item.done", { output_index: outputIndex, item });
      });
      const sent = turn.rawUsage ?? responsesUsage(usage);
      record.sentUsage = sent;
      at("response.completed", { response: responseObject(responseId, model, "completed", output, sent) });
    }

    let flushed: Promise<void> = Promise.resolve();
    for (const [index, event] of events.entries()) {
      if (turn.stallAfterEvents !== undefined && index >= turn.stallAfterEvents) return;
      if (turn.dropAfterEvents !== undefined && index >= turn.dropAfterEvents) {
        // Destroying a socket discards what is still queued: let the events written reach the client first.
        await flushed;
        response.socket?.destroy();
        return;
      }
      if (response.destroyed) return;
      const data = typeof event.data === "string" ? event.data : JSON.stringify(event.data);
      const frame = event.event === undefined ? `data: ${data}\n\n` : `event: ${event.event}\ndata: ${data}\n\n`;
      record.sentEvents.push(event);
      flushed = new Promise<void>((resolve) => response.write(frame, () => resolve()));
      if (response.writableNeedDrain) await new Promise<void>((resolve) => response.once("drain", resolve).once("close", resolve));
      if (turn.eventDelayMs) await new Promise((resolve) => setTimeout(resolve, turn.eventDelayMs));
    }
    response.end();
  };

  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const rawBody = Buffer.concat(chunks).toString("utf8");
      let body: Record<string, unknown> | undefined;
      try {
        const parsed = JSON.parse(rawBody) as unknown;
        if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
      } catch {
        body = undefined;
      }
      const method = request.method ?? "GET";
      const path = request.url ?? "/";
      const record: RecordedRequest = {
        api: classify(method, path),
        method,
        path,
        headers: request.headers,
        rawBody,
        body,
        stream: body?.stream === true,
        turn: undefined,
        sentUsage: undefined,
        sentEvents: [],
        clientClosed: false,
        done: false,
      };
      requests.push(record);
      const finished = new Promise<void>((resolve) => response.once("close", resolve)).then(() => {
        record.done = true;
        open.delete(finished);
      });
      open.add(finished);
      handle(request, response, record).catch((error: unknown) => {
        if (!response.headersSent) {
          response.writeHead(500, { "content-type": "application/json" });
          response.end(JSON.stringify(errorBody(record.api, 500, "api_error", String(error))));
        } else response.destroy();
      });
    });
  });
  server.keepAliveTimeout = 60_000;
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    }));
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    requestsFor: (api) => requests.filter((request) => request.api === api),
    enqueue: (...turns) => void queue.push(...turns),
    get pending() {
      return queue.length;
    },
    settled: async () => {
      await Promise.all([...open]);
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

function responsesOutput(text: string, tools: readonly (ScriptedToolUse & { id: string })[]): Record<string, unknown>[] {
  return [
    ...(text === ""
      ? []
      : [
          {
            type: "message",
            id: id("msg_"),
            status: "completed",
            role: "assistant",
            content: [{ type: "output_text", text, annotations: [] }],
          },
        ]),
    ...tools.map((tool) => ({
      type: "function_call",
      id: id("fc_"),
      call_id: tool.id,
      name: tool.name,
      arguments: JSON.stringify(tool.input),
      status: "completed",
    })),
  ];
}

function responseObject(
  responseId: string,
  model: string,
  status: string,
  output: readonly Record<string, unknown>[],
  usage: Record<string, unknown> | null,
): Record<string, unknown> {
  return {
    id: responseId,
    object: "response",
    created_at: Math.floor(Date.now() / 1000),
    status,
    error: null,
    incomplete_details: null,
    model,
    output,
    parallel_tool_calls: true,
    tool_choice: "auto",
    tools: [],
    usage,
  };
}

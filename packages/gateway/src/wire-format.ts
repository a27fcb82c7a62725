import { createHash } from "node:crypto";
import type { SseFrame } from "./sse-parser.js";

/** The model APIs the gateway speaks. */
export const GATEWAY_APIS = ["anthropic-messages", "anthropic-count-tokens", "openai-responses", "openai-chat"] as const;
export type GatewayApi = (typeof GATEWAY_APIS)[number];

/** Who serves an API: where it is forwarded and whose credential it carries. */
export type GatewayProvider = "anthropic" | "openai";

/** Kinds of error the gateway answers with; each API renders them in its own format. */
export type WireErrorKind =
  "invalid-request" | "authentication" | "not-found" | "too-large" | "budget" | "tools-changed" | "upstream" | "timeout" | "no-credential";

/** One tool of a request's tool set: its name and the sha256 of everything else in its definition. */
export interface ToolFingerprint {
  name: string;
  sha256: string;
}

/** A request body, read for the gateway's checks and changed in place when a budget acts. */
export interface PreparedRequest {
  model: string | undefined;
  stream: boolean;
  /** Texts whose token counts add up to an upper bound of the prompt. */
  inputPieces: string[];
  /** Tool results carried by the request, by their tool-call id. */
  toolResults: { id: string; text: string }[];
  tools: ToolFingerprint[];
  /** The output cap the client asked for (`max_tokens`, `max_output_tokens`, `max_completion_tokens`). */
  maxTokens: number | undefined;
  setMaxTokens(value: number): void;
  /** Forbids tool use for this request and tells the model why. */
  disableTools(note: string): void;
  /** Chat Completions only: whether the client itself asked for the usage chunk. */
  clientWantsUsage: boolean;
  /** True once the body was changed, so it must be serialized again (otherwise its bytes pass as they came). */
  modified: boolean;
}

/** What one SSE frame meant. */
export interface FrameInfo {
  /**
   * Generated text in the frame (text, reasoning, tool input), counted against the generation
   * budget; decoded only when it must be counted. Undefined when the frame carries none.
   */
  text: (() => string) | undefined;
  /**
   * A ceiling of that text's UTF-8 length, known without decoding it.
   * @default the frame's size (a JSON string is never shorter than the text it encodes)
   */
  textBytes?: number;
  /** Drop the frame instead of passing it on (the usage chunk the client did not ask for). */
  drop: boolean;
  /** The API's last event (`message_stop`, `response.completed`, `[DONE]`). */
  terminal: boolean;
  /** Called when the frame is passed on: state that the closing frames repeat (partial text) counts only delivered frames. */
  delivered?: () => void;
}

/** Per-stream state of one API's SSE. */
export interface StreamState {
  inspect(frame: SseFrame): FrameInfo;
  /** The upstream's usage so far, merged as the API documents it (undefined until it sent any). */
  readonly rawUsage: Record<string, unknown> | undefined;
  /** True when the upstream's usage includes the prompt (Anthropic's `message_start`). */
  readonly hasInputUsage: boolean;
  readonly model: string | undefined;
  /** The raw usage to settle a stream the gateway stopped or the upstream dropped. */
  cutUsage(deliveredOutputTokens: number, inputEstimate: number): Record<string, unknown>;
  /** The frames that end the stream as the API does at its output limit. */
  closing(usage: Record<string, unknown>): string;
  /** A frame that reports an error mid-stream, in the API's format. */
  errorFrame(kind: WireErrorKind, message: string): string;
}

/** One API's wire format. */
export interface WireFormat {
  readonly api: GatewayApi;
  readonly provider: GatewayProvider;
  /** Prepares a parsed body; throws a message (a string) when it is not a valid request of this API. */
  prepare(body: Record<string, unknown>): PreparedRequest;
  /** The usage and model of a non-streamed response body. */
  usageOf(body: Record<string, unknown>): Record<string, unknown> | undefined;
  modelOf(body: Record<string, unknown>): string | undefined;
  createStream(prepared: PreparedRequest): StreamState;
}

export type Json = Record<string, unknown>;

export const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);

/** JSON with sorted keys, so one tool definition always hashes the same. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (isObject(value))
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`)
      .join(",")}}`;
  return JSON.stringify(value) ?? "null";
}

/** Fingerprints a tool definition: its name, and the sha256 of the rest. */
function fingerprintTool(name: string, definition: Json): ToolFingerprint {
  const { name: _name, ...rest } = definition;
  return { name, sha256: createHash("sha256").update(canonical(rest)).digest("hex") };
}

/** Fingerprints by a definition's JSON text: an agent sends the same tool set with every request. */
const fingerprints = new Map<string, string>();
const MAX_FINGERPRINTS = 512;

/**
 * The tools of a request: each definition's JSON joins the prompt pieces (tools count as
 * prompt), and each is fingerprinted, hashed once per distinct definition.
 */
export function readTools(
  body: Json,
  nameOf: (tool: Json) => unknown,
  inputPieces: string[],
): { tools: Json[]; fingerprints: ToolFingerprint[] } {
  const tools = Array.isArray(body.tools) ? body.tools.filter(isObject) : [];
  const fingerprinted: ToolFingerprint[] = [];
  for (const tool of tools) {
    const text = JSON.stringify(tool);
    inputPieces.push(text);
    const name = String(nameOf(tool) ?? tool.type);
    let sha256 = fingerprints.get(text);
    if (sha256 === undefined) {
      sha256 = fingerprintTool(name, tool).sha256;
      if (fingerprints.size >= MAX_FINGERPRINTS) fingerprints.delete(fingerprints.keys().next().value!);
      fingerprints.set(text, sha256);
    }
    fingerprinted.push({ name, sha256 });
  }
  return { tools, fingerprints: fingerprinted };
}

/** The text of a content value (a string, blocks, or anything else as JSON), for counting. */
export function textOf(value: unknown): string {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return value.map(textOf).join("\n");
  if (isObject(value)) return typeof value.text === "string" ? value.text : JSON.stringify(value);
  return "";
}

/** A non-negative integer field, or undefined; anything else is a bad request. */
export function optionalCount(body: Json, field: string): number | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) throw `${field} must be a non-negative integer`;
  return value;
}

/** Merges a later usage over an earlier one, field by field, skipping nulls (nested objects too). */
export function mergeUsage(into: Json | undefined, update: unknown): Json | undefined {
  if (!isObject(update)) return into;
  const merged: Json = { ...into };
  for (const [key, value] of Object.entries(update)) {
    if (value === null || value === undefined) continue;
    merged[key] = isObject(value) && isObject(merged[key]) ? mergeUsage(merged[key], value) : value;
  }
  return merged;
}

/** The `usage` object of a response body (all three APIs put it there). */
export const usageField = (body: Json): Json | undefined => (isObject(body.usage) ? body.usage : undefined);

/** The `model` of a response body. */
export const modelField = (body: Json): string | undefined => (typeof body.model === "string" ? body.model : undefined);

/** Parses a frame's data as JSON, or undefined when it is not. */
export function dataOf(frame: SseFrame): Json | undefined {
  if (frame.data === "" || frame.data === "[DONE]") return undefined;
  try {
    const value = JSON.parse(frame.data) as unknown;
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

export const sse = (event: string | undefined, data: unknown): string =>
  `${event === undefined ? "" : `event: ${event}\n`}data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`;

/** How each API states an error kind: its HTTP status, `type` and (OpenAI) `code`. */
const ERRORS = {
  anthropic: {
    "invalid-request": [400, "invalid_request_error", null],
    authentication: [401, "authentication_error", null],
    "not-found": [404, "not_found_error", null],
    "too-large": [413, "request_too_large", null],
    // Anthropic's own answer to spending that is not allowed (402 billing_error). Not 429: agent
    // CLIs retry 429 for minutes, and a spent budget does not come back. Not 400: Claude Code
    // takes a 400 for a feature the API refused and sends the call again without it, five times;
    // billing_error is the one type it ends on at once.
    budget: [402, "billing_error", null],
    "tools-changed": [403, "permission_error", null],
    upstream: [502, "api_error", null],
    timeout: [504, "api_error", null],
    "no-credential": [500, "api_error", null],
  },
  openai: {
    "invalid-request": [400, "invalid_request_error", null],
    authentication: [401, "invalid_request_error", "invalid_api_key"],
    "not-found": [404, "invalid_request_error", "not_found"],
    "too-large": [413, "invalid_request_error", "request_too_large"],
    // OpenAI's own answer to a spent quota; Codex and the SDKs stop on it instead of retrying.
    budget: [429, "insufficient_quota", "insufficient_quota"],
    "tools-changed": [403, "invalid_request_error", "tools_changed"],
    upstream: [502, "server_error", null],
    timeout: [504, "server_error", "timeout"],
    "no-credential": [500, "server_error", null],
  },
} as const satisfies Record<GatewayProvider, Record<WireErrorKind, readonly [number, string, string | null]>>;

/** An error kind as an API states it: the `type` its error bodies and stream error events carry. */
export const errorType = (provider: GatewayProvider, kind: WireErrorKind): string => ERRORS[provider][kind][1];

/** An error answer in the API's own format: its status and body. */
export function errorResponse(provider: GatewayProvider, kind: WireErrorKind, message: string): { status: number; body: Json } {
  const [status, type, code] = ERRORS[provider][kind];
  if (provider === "anthropic") return { status, body: { type: "error", error: { type, message } } };
  return { status, body: { error: { message, type, code, param: null } } };
}

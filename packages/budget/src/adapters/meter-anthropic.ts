import { InvalidArgumentError } from "@bulkhead/core";
import { Budget, type Lease } from "../create-budget.js";
import { createTokenCounter, type BudgetTokenCounter } from "../create-token-counter.js";
import type { Tracker } from "../create-tracker.js";
import { claudeFactor } from "../encodings.js";
import { normalizeUsage, usageOnly } from "../normalize-usage.js";
import { createCallMeter, estimatedUsage } from "./call-meter.js";
import { mergeUsage } from "./merge-usage.js";
import { anthropicDeltaTextBytes, observeSse, sseEventName, sseJson } from "./observe-sse.js";
import { OutputMeter } from "../output-meter.js";
import { onJsonBody } from "./on-json-body.js";

/**
 * What the adapter needs of an Anthropic SDK client (`@anthropic-ai/sdk` 1.x, or the Bedrock,
 * Vertex and Foundry clients built on it): its client middleware and `withOptions`.
 */
export interface AnthropicLike {
  readonly middleware: ReadonlyArray<unknown>;
  withOptions(options: never): unknown;
}

/** The request body fields the adapter reads. */
export interface AnthropicParams {
  model: string;
  max_tokens: number;
  messages: readonly { role: string; content: unknown }[];
  system?: unknown;
  tools?: readonly unknown[];
  stream?: boolean;
  [key: string]: unknown;
}

export interface MeterAnthropicOptions {
  budget: Budget;
  tracker?: Tracker;
  repo?: string;
  operation?: string;
  /** Counts prompts; Claude counts are estimates, reserved at their upper bound. @default a counter for the call's model */
  counter?: BudgetTokenCounter;
  /** Price usage in the budget and the tracker by the call's model. @default true */
  price?: boolean;
}

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);

/** The text a prompt part contributes: text, tool inputs and results, anything else as JSON. */
function textOf(value: unknown): string {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return value.map(textOf).join("\n");
  if (isObject(value)) {
    if (typeof value.text === "string") return value.text;
    if (value.type === "tool_result") return textOf(value.content);
    if (value.type === "image" || value.type === "document") return JSON.stringify({ ...value, source: undefined });
    return JSON.stringify(value);
  }
  return "";
}

/** The generated text of a `content_block_delta` frame (text, thinking or tool input). */
function deltaText(frame: Buffer): string {
  const delta = sseJson(frame)?.delta;
  if (!isObject(delta)) return "";
  const text = typeof delta.text === "string" ? delta.text : typeof delta.thinking === "string" ? delta.thinking : delta.partial_json;
  return typeof text === "string" ? text : "";
}

/** The index of a `content_block_start` frame's block. */
function blockIndex(frame: Buffer): number {
  const index = sseJson(frame)?.index;
  return typeof index === "number" ? index : 0;
}

const sse = (name: string, payload: Json) => `event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`;

/** The events the API ends a message with at max_tokens: the open block closed, the stop reason, the stop. */
const closing = (openBlock: number | undefined, outputTokens: number) =>
  (openBlock === undefined ? "" : sse("content_block_stop", { type: "content_block_stop", index: openBlock })) +
  sse("message_delta", {
    type: "message_delta",
    delta: { stop_reason: "max_tokens", stop_sequence: null },
    usage: { output_tokens: outputTokens },
  }) +
  sse("message_stop", { type: "message_stop" });

type Request = RequestInit & { url: string; headers: Headers };
type Next = (request: Request) => Promise<Response>;

/**
 * Meters an Anthropic SDK client, returning a copy of the same type (`client.withOptions`) with a
 * client middleware on it: every Messages request (`messages.create` in both modes,
 * `messages.stream`, `beta.messages.*`, the tool runner) has its prompt reserved at the upper-bound
 * estimate and `max_tokens` lowered to what the budget has left, so the API itself stops there;
 * it is refused with {@link BudgetExceededError} before anything is sent when nothing is left;
 * and it settles with the usage the API reports (a stream's `message_start` and `message_delta`,
 * nulls ignored). A stream is also cut cleanly (`stop_reason: "max_tokens"`) when its counted
 * output passes the reservation. Everything else the SDK returns is untouched: `APIPromise`
 * (`withResponse`, `asResponse`), `Stream` (`tee`, `toReadableStream`, `controller`),
 * `MessageStream`, `countTokens`, `models`.
 *
 * @example
 * const anthropic = meterAnthropic(new Anthropic(), { budget, tracker });
 * const message = await anthropic.messages.create({ model: "claude-sonnet-4-6", max_tokens: 1024, messages });
 */
export function meterAnthropic<TClient extends AnthropicLike>(
  client: TClient,
  { budget, tracker, repo = "default", operation = "generate", counter, price = true }: MeterAnthropicOptions,
): TClient {
  if (!Budget.isInstance(budget)) throw new InvalidArgumentError("options.budget", "expected a Budget from createBudget");
  if (!isObject(client as unknown) || typeof client.withOptions !== "function" || !Array.isArray(client.middleware))
    throw new InvalidArgumentError(
      "client",
      "expected an Anthropic client with middleware support (new Anthropic() from @anthropic-ai/sdk 1.x): upgrade the SDK",
    );
  const counters = new Map<string, BudgetTokenCounter>();
  const counterFor = (model: string) => {
    if (counter) return counter;
    let own = counters.get(model);
    // A model the counter does not know is counted as the most expansive Claude tokenizer.
    if (!own) counters.set(model, (own = createTokenCounter({ model: claudeFactor(model) === undefined ? "claude-opus-4-7" : model })));
    return own;
  };
  const { outputLimit, reserve, book } = createCallMeter({ budget, tracker, repo, operation, price });

  const prepare = (params: AnthropicParams): { lease: Lease; inputTokens: number; maxTokens: number } => {
    const prompt = [
      textOf(params.system),
      ...params.messages.map((message) => `${message.role}\n${textOf(message.content)}`),
      JSON.stringify(params.tools ?? []),
    ].join("\n");
    const inputTokens = counterFor(params.model).countWithBound(prompt).upperBound;
    const maxTokens = outputLimit(inputTokens, params.max_tokens);
    return { lease: reserve(inputTokens, maxTokens), inputTokens, maxTokens };
  };

  const middleware = async (request: Request, next: Next): Promise<Response> => {
    if (request.method !== "POST" || !/\/v1\/messages(\?|$)/.test(request.url) || typeof request.body !== "string") return next(request);
    let params: AnthropicParams;
    try {
      params = JSON.parse(request.body) as AnthropicParams;
    } catch {
      return next(request);
    }
    if (!isObject(params) || typeof params.model !== "string" || typeof params.max_tokens !== "number" || !Array.isArray(params.messages))
      return next(request);
    const { lease, inputTokens, maxTokens } = prepare(params);
    const clamped = maxTokens !== params.max_tokens;
    let headers = request.headers;
    // A rewritten body has another length; an unchanged one keeps its header (and no copy is made).
    if (clamped && headers.has("content-length")) {
      headers = new Headers(headers);
      headers.delete("content-length");
    }
    let response: Response;
    try {
      response = await next(clamped ? { ...request, headers, body: JSON.stringify({ ...params, max_tokens: maxTokens }) } : request);
    } catch (error) {
      budget.release(lease);
      throw error;
    }
    if (!response.ok || response.body === null) {
      // An API error is not billed; the SDK retries or throws it.
      budget.release(lease);
      return response;
    }
    if (params.stream !== true) {
      return onJsonBody(response, (message) =>
        book(
          lease,
          isObject(message) && isObject(message.usage)
            ? usageOnly(normalizeUsage("anthropic", message.usage))
            : estimatedUsage(inputTokens, maxTokens),
          params.model,
        ),
      );
    }
    return meteredStream(response, lease, inputTokens, maxTokens, params.model);
  };

  const meteredStream = (response: Response, lease: Lease, inputTokens: number, maxTokens: number, model: string): Response => {
    // Only the usage events are parsed; deltas are passed on as bytes and counted only when the
    // output nears the reservation (or the stream ends without its final usage).
    const meter = new OutputMeter(counterFor(model), maxTokens);
    let reported: Json | undefined;
    let final = false;
    let openBlock: Buffer | undefined;
    return observeSse(
      response,
      (frame) => {
        switch (sseEventName(frame) ?? sseJson(frame)?.type) {
          case "content_block_delta":
            if (meter.admit(anthropicDeltaTextBytes(frame), () => deltaText(frame))) return undefined;
            // Over the reservation: end the message as the API does at max_tokens, so the SDK's
            // stream and MessageStream finish normally with what was let through.
            return { end: true, append: closing(openBlock && blockIndex(openBlock), meter.tokens) };
          case "message_start": {
            const message = sseJson(frame)?.message;
            if (isObject(message) && isObject(message.usage)) reported = mergeUsage({}, message.usage);
            return undefined;
          }
          case "message_delta": {
            const usage = sseJson(frame)?.usage;
            if (isObject(usage)) {
              reported = mergeUsage(reported ?? {}, usage);
              final = true;
            }
            return undefined;
          }
          case "content_block_start":
            // Read only if the stream is cut inside this block.
            openBlock = frame;
            return undefined;
          case "content_block_stop":
            openBlock = undefined;
            return undefined;
          default:
            return undefined;
        }
      },
      (how) => {
        // A stream that ended early (cut, canceled, broken) is booked with what was let through.
        const complete = final && how === "done";
        const usage = reported
          ? usageOnly(
              normalizeUsage(
                "anthropic",
                complete
                  ? reported
                  : { ...reported, output_tokens: Math.max(final ? Number(reported.output_tokens ?? 0) : 0, meter.tokens) },
              ),
            )
          : estimatedUsage(inputTokens, meter.tokens);
        book(lease, usage, model);
      },
    );
  };

  const withOptions = client.withOptions as unknown as (options: { middleware: unknown[] }) => TClient;
  return withOptions.call(client, { middleware: [...client.middleware, middleware] });
}

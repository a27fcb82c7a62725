import { InvalidArgumentError, type Usage } from "@bulkhead/core";
import { Budget } from "../create-budget.js";
import { createTokenCounter, type BudgetTokenCounter } from "../create-token-counter.js";
import type { Tracker } from "../create-tracker.js";
import { openAiEncoding } from "../encodings.js";
import { normalizeUsage, usageOnly } from "../normalize-usage.js";
import { createCallMeter, estimatedUsage } from "./call-meter.js";
import { observeSse, sseJson } from "./observe-sse.js";
import { OutputMeter } from "../output-meter.js";
import { onJsonBody } from "./on-json-body.js";

/** What the adapter needs of an `openai` client (4.x and later): `withOptions`, and its `fetch`. */
export interface OpenAILike {
  withOptions(options: never): unknown;
}

export interface MeterOpenAIOptions {
  budget: Budget;
  tracker?: Tracker;
  repo?: string;
  operation?: string;
  /** Counts prompts and streamed deltas. @default the call's model's encoding (o200k_base when unknown) */
  counter?: BudgetTokenCounter;
  /** Reserved and sent as the output limit when a call sets none. @default 4096 */
  defaultMaxOutputTokens?: number;
  /** Price usage in the budget and the tracker by the call's model. @default true */
  price?: boolean;
}

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);
type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * The bytes a usage object begins with. Inside a JSON string a quote is always escaped, so these
 * bytes mean a `usage` key with an object value (Chat's chunks send `"usage":null` until the last).
 */
const USAGE_KEY = Buffer.from('"usage":{');

/** The prompt text of a Chat Completions or Responses body: messages, input items, instructions, tools. */
function promptText(body: Json): string {
  const parts: string[] = [];
  const walk = (value: unknown): void => {
    if (typeof value === "string") parts.push(value);
    else if (Array.isArray(value)) value.forEach(walk);
    else if (isObject(value)) {
      for (const key of ["role", "content", "text", "arguments", "output", "name"]) if (key in value) walk(value[key]);
    }
  };
  walk(body.instructions);
  walk(body.messages);
  walk(body.input);
  if (body.tools !== undefined) parts.push(JSON.stringify(body.tools));
  return parts.join("\n");
}

/** The text of one streamed event that the model generated (Chat chunk or Responses event). */
function generatedText(event: Json): string {
  if (typeof event.type === "string") {
    return event.type.endsWith(".delta") && typeof event.delta === "string" ? event.delta : "";
  }
  let text = "";
  for (const choice of Array.isArray(event.choices) ? event.choices : []) {
    const delta = isObject(choice) && isObject(choice.delta) ? choice.delta : undefined;
    if (!delta) continue;
    if (typeof delta.content === "string") text += delta.content;
    for (const call of Array.isArray(delta.tool_calls) ? delta.tool_calls : [])
      if (isObject(call) && isObject(call.function) && typeof call.function.arguments === "string") text += call.function.arguments;
  }
  return text;
}

/**
 * Meters an `openai` client, returning a copy of the same type (`client.withOptions` with a
 * metering `fetch` around the client's own): `chat.completions.create` and `responses.create`,
 * streaming and not (and the helpers built on them), reserve the prompt (counted with the
 * model's own encoding) and the output limit before the request is sent, lower
 * `max_completion_tokens` / `max_tokens` / `max_output_tokens` to what the budget has left (so
 * the API stops there), refuse with {@link BudgetExceededError} when nothing is left, and settle
 * with the usage the API reports: cached reads, cache writes (`cache_write_tokens`) and reasoning
 * included. Streamed Chat Completions get `stream_options.include_usage` so their usage arrives.
 *
 * @example
 * const openai = meterOpenAI(new OpenAI(), { budget, tracker });
 * const response = await openai.responses.create({ model: "gpt-5.1", input: "Add a rate limit." });
 */
export function meterOpenAI<TClient extends OpenAILike>(
  client: TClient,
  { budget, tracker, repo = "default", operation = "generate", counter, defaultMaxOutputTokens = 4096, price = true }: MeterOpenAIOptions,
): TClient {
  if (!Budget.isInstance(budget)) throw new InvalidArgumentError("options.budget", "expected a Budget from createBudget");
  if (typeof client !== "object" || client === null || typeof client.withOptions !== "function")
    throw new InvalidArgumentError("client", "expected an OpenAI client (new OpenAI() from the openai package)");
  if (!(Number.isInteger(defaultMaxOutputTokens) && defaultMaxOutputTokens > 0))
    throw new InvalidArgumentError("options.defaultMaxOutputTokens", `expected a positive whole number, got ${defaultMaxOutputTokens}`);
  const inner: Fetch = (client as unknown as { fetch?: Fetch }).fetch ?? globalThis.fetch;
  const counters = new Map<string, BudgetTokenCounter>();
  const counterFor = (model: string) => {
    if (counter) return counter;
    let own = counters.get(model);
    if (!own)
      counters.set(model, (own = openAiEncoding(model) ? createTokenCounter({ model }) : createTokenCounter({ encoding: "o200k_base" })));
    return own;
  };
  const { outputLimit, reserve, book } = createCallMeter({ budget, tracker, repo, operation, price });

  /** What a call reserves; throws {@link BudgetExceededError} when no output fits. */
  const plan = (api: "chat" | "responses", body: Json) => {
    const limitField = api === "responses" ? "max_output_tokens" : "max_tokens" in body ? "max_tokens" : "max_completion_tokens";
    const wanted = typeof body[limitField] === "number" ? (body[limitField] as number) : defaultMaxOutputTokens;
    const inputTokens = counterFor(String(body.model)).countWithBound(promptText(body)).upperBound;
    const maxTokens = outputLimit(inputTokens, wanted);
    return { limitField, inputTokens, maxTokens };
  };

  const metered: Fetch = async (input, init) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const path = new URL(url).pathname;
    const api = /\/chat\/completions$/.test(path) ? "chat" : /\/responses$/.test(path) ? "responses" : undefined;
    if (!api || init?.method !== "POST" || typeof init.body !== "string") return inner(input, init);
    let body: Json;
    try {
      body = JSON.parse(init.body) as Json;
    } catch {
      return inner(input, init);
    }
    if (!isObject(body) || typeof body.model !== "string") return inner(input, init);
    const model = body.model;
    const { limitField, inputTokens, maxTokens } = plan(api, body);
    const lease = reserve(inputTokens, maxTokens);
    const stream = body.stream === true;
    const sent: Json = { ...body, [limitField]: maxTokens };
    if (stream && api === "chat")
      sent.stream_options = { ...(isObject(body.stream_options) ? body.stream_options : {}), include_usage: true };
    const headers = new Headers(init.headers);
    headers.delete("content-length");
    let response: Response;
    try {
      response = await inner(input, { ...init, headers, body: JSON.stringify(sent) });
    } catch (error) {
      budget.release(lease);
      throw error;
    }
    if (!response.ok || response.body === null) {
      budget.release(lease);
      return response;
    }
    const estimate = (outputTokens: number) => estimatedUsage(inputTokens, outputTokens);
    if (!stream) {
      return onJsonBody(response, (data) =>
        book(lease, isObject(data) && isObject(data.usage) ? usageOnly(normalizeUsage("openai", data.usage)) : estimate(maxTokens), model),
      );
    }
    // Only a frame that carries a usage object is parsed as it passes; the others are kept as
    // bytes and counted only if the stream ends without a usage (canceled, broken off).
    const meter = new OutputMeter(counterFor(model), Infinity);
    let reported: Usage | undefined;
    return observeSse(
      response,
      (frame) => {
        if (frame.indexOf(USAGE_KEY) === -1) {
          meter.admit(frame.length, () => generatedText(sseJson(frame) ?? {}));
          return undefined;
        }
        const event = sseJson(frame);
        if (!event) return undefined;
        const text = generatedText(event);
        if (text !== "") meter.admitText(text);
        const usage = isObject(event.usage)
          ? event.usage
          : isObject(event.response) && isObject(event.response.usage)
            ? event.response.usage
            : undefined;
        if (usage) reported = usageOnly(normalizeUsage("openai", usage));
        return undefined;
      },
      () => book(lease, reported ?? estimate(meter.tokens), model),
    );
  };

  const withOptions = client.withOptions as unknown as (options: { fetch: Fetch }) => TClient;
  const copy = withOptions.call(client, { fetch: metered }) as TClient & {
    chat?: { completions?: { create?: (...args: unknown[]) => unknown } };
    responses?: { create?: (...args: unknown[]) => unknown };
  };
  // The SDK retries (and wraps) an error thrown from fetch as a connection error, so a refusal is
  // raised by the method itself, before the request exists: BudgetExceededError, as it is.
  const refuseEarly = (resource: { create?: (...args: unknown[]) => unknown } | undefined, api: "chat" | "responses") => {
    const original = resource?.create;
    if (!resource || typeof original !== "function") return;
    resource.create = function (this: unknown, params: unknown, ...rest: unknown[]) {
      try {
        if (isObject(params) && typeof params.model === "string") plan(api, params);
      } catch (error) {
        // Rejected, not thrown: callers chain .catch() on the SDK's promise.
        return Promise.reject(error);
      }
      return original.call(this, params, ...rest);
    };
  };
  refuseEarly(copy.chat?.completions, "chat");
  refuseEarly(copy.responses, "responses");
  return copy;
}

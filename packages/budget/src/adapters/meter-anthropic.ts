import { emptyUsage, InvalidArgumentError, type Usage } from "@bulkhead/core";
import { BudgetExceededError } from "../budget-exceeded-error.js";
import { Budget, type Lease } from "../create-budget.js";
import { createTokenCounter, type BudgetTokenCounter } from "../create-token-counter.js";
import type { Tracker } from "../create-tracker.js";
import { normalizeUsage, usageOnly } from "../normalize-usage.js";

/** The part of the Anthropic SDK's client this adapter uses. */
export interface AnthropicLike {
  messages: { create(params: AnthropicParams, options?: unknown): Promise<unknown> };
}

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
  /** Price usage in the tracker by the call's model (an unknown model then throws). @default true */
  price?: boolean;
}

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null;

function textOf(value: unknown): string {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return value.map(textOf).join("\n");
  if (isObject(value)) return typeof value.text === "string" ? value.text : JSON.stringify(value);
  return "";
}

/**
 * Wraps an Anthropic SDK client so `messages.create` is metered: the prompt is reserved at its
 * upper-bound estimate, `max_tokens` is lowered to what the generation budget has left (so the
 * API itself stops there), the call is refused with {@link BudgetExceededError} when nothing is
 * left, and the reported usage settles the reservation. Streams (`stream: true`) are passed
 * through, counted, and aborted at the reserved output; their usage comes from `message_start`
 * and `message_delta`.
 *
 * @example
 * const anthropic = meterAnthropic(new Anthropic(), { budget, tracker });
 * const message = await anthropic.messages.create({ model: "claude-sonnet-4-5", max_tokens: 1024, messages });
 */
export function meterAnthropic<TClient extends AnthropicLike>(
  client: TClient,
  { budget, tracker, repo = "default", operation = "generate", counter, price = true }: MeterAnthropicOptions,
): TClient {
  if (!(budget instanceof Budget)) throw new InvalidArgumentError("options.budget", "expected a Budget from createBudget");
  if (!isObject(client) || typeof client.messages?.create !== "function")
    throw new InvalidArgumentError("client", "expected an Anthropic client with messages.create");
  const counters = new Map<string, BudgetTokenCounter>();
  const counterFor = (model: string) => {
    if (counter) return counter;
    let own = counters.get(model);
    if (!own) counters.set(model, (own = createTokenCounter({ model })));
    return own;
  };
  const record = (usage: Usage, model: string) => {
    const span = tracker?.startSpan({ repo, operation, ...(price ? { model } : {}) });
    span?.record(usage);
    span?.end();
  };

  const prepare = (params: AnthropicParams): { lease: Lease; inputTokens: number; maxTokens: number } => {
    const count = counterFor(params.model);
    const prompt = [
      textOf(params.system),
      ...params.messages.map((message) => `${message.role}\n${textOf(message.content)}`),
      JSON.stringify(params.tools ?? []),
    ].join("\n");
    const inputTokens = count.countWithBound(prompt).upperBound;
    const room = Math.min(budget.available("generation"), budget.available("sessionTotal") - inputTokens);
    const maxTokens = Math.min(params.max_tokens, room);
    if (maxTokens <= 0)
      throw new BudgetExceededError(
        budget.id,
        "generation",
        params.max_tokens,
        Math.max(0, room),
        budget.limit("generation") ?? budget.limit("sessionTotal") ?? 0,
      );
    return { lease: budget.reserve({ contextRead: inputTokens, generation: maxTokens }), inputTokens, maxTokens };
  };

  const create = async (params: AnthropicParams, options?: unknown): Promise<unknown> => {
    if (!isObject(params) || typeof params.model !== "string" || typeof params.max_tokens !== "number" || !Array.isArray(params.messages)) {
      throw new InvalidArgumentError("params", "expected { model, max_tokens, messages }");
    }
    const { lease, inputTokens, maxTokens } = prepare(params);
    let response: unknown;
    try {
      response = await client.messages.create({ ...params, max_tokens: maxTokens }, options);
    } catch (error) {
      budget.release(lease);
      throw error;
    }
    if (!params.stream) {
      const usage = usageOnly(normalizeUsage("anthropic", (response as Json).usage));
      budget.settle(lease, usage);
      record(usage, params.model);
      return response;
    }
    return meterStream(response as AsyncIterable<Json> & { controller?: AbortController }, lease, inputTokens, maxTokens, params.model);
  };

  const meterStream = (
    stream: AsyncIterable<Json> & { controller?: AbortController },
    lease: Lease,
    inputTokens: number,
    maxTokens: number,
    model: string,
  ) => {
    const count = counterFor(model);
    const metered = {
      controller: stream.controller,
      async *[Symbol.asyncIterator]() {
        let reported: Json = {};
        let counted = 0;
        let final = false;
        let settled = false;
        const settle = () => {
          if (settled) return;
          settled = true;
          const usage =
            "input_tokens" in reported
              ? usageOnly(
                  normalizeUsage(
                    "anthropic",
                    final ? reported : { ...reported, output_tokens: Math.max(Number(reported.output_tokens ?? 0), counted) },
                  ),
                )
              : { ...emptyUsage(), inputTokens, uncachedInputTokens: inputTokens, outputTokens: counted };
          budget.settle(lease, usage);
          record(usage, model);
        };
        try {
          for await (const event of stream) {
            if (event.type === "message_start" && isObject(event.message) && isObject(event.message.usage))
              reported = { ...event.message.usage };
            // message_delta carries the final output count; before it, the local count is the best bound.
            if (event.type === "message_delta" && isObject(event.usage)) {
              reported = { ...reported, ...event.usage };
              final = true;
            }
            if (event.type === "content_block_delta" && isObject(event.delta) && typeof event.delta.text === "string") {
              counted += count.count(event.delta.text);
              if (counted > maxTokens) {
                stream.controller?.abort();
                break;
              }
            }
            yield event;
          }
        } finally {
          settle();
        }
      },
    };
    return metered;
  };

  // The SDK's clients are class instances: their methods live on prototypes (messages.stream,
  // messages.countTokens, client.models, …) and use `this`. A proxy keeps all of them, bound to
  // the original objects, and swaps in the metered create alone.
  const forward = <T extends object>(target: T, replace: Record<PropertyKey, unknown>): T =>
    new Proxy(target, {
      get(object, property) {
        if (Object.hasOwn(replace, property)) return replace[property];
        const value: unknown = Reflect.get(object, property, object);
        return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(object) : value;
      },
    });
  const messages = forward(client.messages as object, { create });
  return forward(client as object, { messages }) as TClient;
}

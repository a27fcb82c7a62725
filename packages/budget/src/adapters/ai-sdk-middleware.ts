import { InvalidArgumentError, type TokenCounter, type Usage } from "@bulkhead/core";
import { Budget, type Lease } from "../create-budget.js";
import { createTokenCounter, type BudgetTokenCounter } from "../create-token-counter.js";
import type { Tracker } from "../create-tracker.js";
import { normalizeUsage, usageOnly } from "../normalize-usage.js";
import { createCallMeter, estimatedUsage } from "./call-meter.js";
import { OutputMeter } from "../output-meter.js";

export interface BudgetMiddlewareOptions {
  budget: Budget;
  tracker?: Tracker;
  /** The repo and operation spans are attributed to. @default "default", "generate" */
  repo?: string;
  operation?: string;
  /** Counts the prompt and the streamed deltas. @default an o200k_base counter */
  counter?: TokenCounter;
  /** Reserved for output when a call sets no `maxOutputTokens`. @default 4096 */
  defaultMaxOutputTokens?: number;
  /** Price usage in the budget and tracker by the model's id (`model.modelId`). @default true */
  price?: boolean;
}

/**
 * The call options both specification versions share and the middleware reads. Typed by
 * structure, so one build fits `@ai-sdk/provider` 3 (ai@6) and 4 (ai@7) without importing either.
 */
export interface AiSdkCallOptions {
  prompt: readonly { role: string; content: string | readonly { type: string; text?: string; input?: unknown; output?: unknown }[] }[];
  maxOutputTokens?: number | undefined;
  abortSignal?: AbortSignal | undefined;
}

/**
 * A language model middleware for `wrapLanguageModel`: `"v4"` for ai@7 (`LanguageModelV4Middleware`),
 * `"v3"` for ai@6 (`LanguageModelV3Middleware`). The wrappers are generic, so each version's own
 * result types flow through unchanged.
 */
export interface BudgetLanguageModelMiddleware<TVersion extends "v3" | "v4"> {
  readonly specificationVersion: TVersion;
  wrapGenerate<TResult extends object>(options: {
    doGenerate: () => PromiseLike<TResult>;
    params: AiSdkCallOptions;
    model: { readonly modelId: string };
  }): Promise<TResult>;
  wrapStream<TResult extends { stream: ReadableStream<unknown> }>(options: {
    doStream: () => PromiseLike<TResult>;
    params: AiSdkCallOptions;
    model: { readonly modelId: string };
  }): Promise<TResult>;
}

type Part = { type: string; delta?: string; usage?: unknown };

function promptText(prompt: AiSdkCallOptions["prompt"]): string {
  let text = "";
  for (const message of prompt) {
    text += `${message.role}\n`;
    if (typeof message.content === "string") text += `${message.content}\n`;
    else
      for (const part of message.content) {
        if (typeof part.text === "string") text += `${part.text}\n`;
        // Tool calls and their results are prompt tokens of the next step.
        if (part.input !== undefined) text += `${typeof part.input === "string" ? part.input : JSON.stringify(part.input)}\n`;
        if (part.output !== undefined) text += `${JSON.stringify(part.output)}\n`;
      }
  }
  return text;
}

type AiSdkUsage = { inputTokens?: { total?: number | undefined }; outputTokens?: { total?: number | undefined } };

function fromAiSdk(usage: unknown, fallback: () => Usage): Usage {
  const shaped = usage as AiSdkUsage | undefined;
  if (!shaped || shaped.inputTokens?.total === undefined || shaped.outputTokens?.total === undefined) return fallback();
  const { raw: _raw, ...known } = usage as Record<string, unknown>;
  return usageOnly(normalizeUsage("ai-sdk", known));
}

function createMiddleware<TVersion extends "v3" | "v4">(
  specificationVersion: TVersion,
  {
    budget,
    tracker,
    repo = "default",
    operation = "generate",
    counter,
    defaultMaxOutputTokens = 4096,
    price = true,
  }: BudgetMiddlewareOptions,
): BudgetLanguageModelMiddleware<TVersion> {
  if (!Budget.isInstance(budget)) throw new InvalidArgumentError("options.budget", "expected a Budget from createBudget");
  if (!(Number.isInteger(defaultMaxOutputTokens) && defaultMaxOutputTokens > 0))
    throw new InvalidArgumentError("options.defaultMaxOutputTokens", `expected a positive whole number, got ${defaultMaxOutputTokens}`);
  let ownCounter: BudgetTokenCounter | undefined;
  const count = (text: string) => Number((counter ?? (ownCounter ??= createTokenCounter({ encoding: "o200k_base" }))).count(text));

  const meter = createCallMeter({ budget, tracker, repo, operation, price });
  const { book } = meter;
  const reserve = (params: AiSdkCallOptions): { lease: Lease; inputTokens: number; outputLimit: number } => {
    const inputTokens = count(promptText(params.prompt));
    const outputLimit = meter.outputLimit(inputTokens, params.maxOutputTokens ?? defaultMaxOutputTokens);
    return { lease: meter.reserve(inputTokens, outputLimit), inputTokens, outputLimit };
  };

  return {
    specificationVersion,
    async wrapGenerate({ doGenerate, params, model }) {
      const { lease, inputTokens } = reserve(params);
      let result;
      try {
        result = await doGenerate();
      } catch (error) {
        budget.release(lease);
        throw error;
      }
      book(
        lease,
        fromAiSdk((result as { usage?: unknown }).usage, () => estimatedUsage(inputTokens, 0)),
        model.modelId,
      );
      return result;
    },
    async wrapStream({ doStream, params, model }) {
      const { lease, inputTokens, outputLimit } = reserve(params);
      let upstream;
      try {
        upstream = await doStream();
      } catch (error) {
        budget.release(lease);
        throw error;
      }
      // Deltas are counted only when the output nears the limit, or when the stream ends without
      // the provider's usage: a complete stream is booked from its finish part.
      const meter = new OutputMeter({ count }, outputLimit);
      let settled = false;
      const settle = (usage: Usage) => {
        if (settled) return;
        settled = true;
        params.abortSignal?.removeEventListener("abort", onAbort);
        book(lease, usage, model.modelId);
      };
      const counted = () => estimatedUsage(inputTokens, meter.tokens);
      const reader = (upstream.stream as ReadableStream<Part>).getReader();
      // An aborted call may never cancel this stream: book what was counted when the signal fires.
      const onAbort = () => {
        settle(counted());
        void reader.cancel(params.abortSignal?.reason).catch(() => undefined);
      };
      params.abortSignal?.addEventListener("abort", onAbort, { once: true });
      const stream = new ReadableStream<Part>({
        async pull(controller) {
          const next = await reader.read().catch((error: unknown) => {
            settle(counted());
            throw error;
          });
          if (next.done) {
            settle(counted());
            controller.close();
            return;
          }
          const part = next.value;
          if (part.type === "finish") {
            settle(fromAiSdk(part.usage, counted));
            controller.enqueue(part);
            return;
          }
          if ((part.type === "text-delta" || part.type === "reasoning-delta") && typeof part.delta === "string") {
            const delta = part.delta;
            // A UTF-16 unit is at most 3 UTF-8 bytes: a ceiling of the delta's bytes without encoding it.
            if (!meter.admit(3 * delta.length, () => delta)) {
              // The generation budget is reached: cancel upstream, keep what fit, finish as "length".
              await reader.cancel("generation budget reached").catch(() => undefined);
              const outputTokens = meter.tokens;
              settle(counted());
              controller.enqueue({
                type: "finish",
                finishReason: { unified: "length", raw: "bulkhead-generation-budget" },
                usage: {
                  inputTokens: { total: inputTokens, noCache: inputTokens, cacheRead: 0, cacheWrite: 0 },
                  outputTokens: { total: outputTokens, text: outputTokens, reasoning: undefined },
                },
              } as Part);
              controller.close();
              return;
            }
          }
          controller.enqueue(part);
        },
        async cancel(reason) {
          // The consumer aborted: book what was counted so the spend is not lost.
          settle(counted());
          await reader.cancel(reason).catch(() => undefined);
        },
      });
      return { ...upstream, stream } as typeof upstream;
    },
  };
}

/**
 * Embeds the budget in the Vercel AI SDK 7 (`wrapLanguageModel({ model, middleware })`, a
 * `LanguageModelV4Middleware`; for ai@6 use {@link budgetMiddlewareV3}). Each call reserves its
 * prompt (counted) and its output (`maxOutputTokens`, or what the budget has left) before it
 * runs, refuses with {@link BudgetExceededError} when that does not fit, settles with the
 * provider's usage after (priced by the model's id), stops a stream at the reserved output
 * keeping the partial text (finish reason `length`), and books what was counted when a stream
 * is aborted. Every step of a tool loop is its own metered call.
 *
 * @example
 * const model = wrapLanguageModel({ model: openai("gpt-5.1"), middleware: budgetMiddleware({ budget, tracker }) });
 */
export function budgetMiddleware(options: BudgetMiddlewareOptions): BudgetLanguageModelMiddleware<"v4"> {
  return createMiddleware("v4", options);
}

/**
 * {@link budgetMiddleware} for ai@6 (`LanguageModelV3Middleware`, `@ai-sdk/provider` 3).
 *
 * @example
 * const model = wrapLanguageModel({ model: anthropic("claude-sonnet-4-5"), middleware: budgetMiddlewareV3({ budget }) });
 */
export function budgetMiddlewareV3(options: BudgetMiddlewareOptions): BudgetLanguageModelMiddleware<"v3"> {
  return createMiddleware("v3", options);
}

import type { LanguageModelV3Middleware, LanguageModelV3Prompt, LanguageModelV3StreamPart, LanguageModelV3Usage } from "@ai-sdk/provider";
import { emptyUsage, InvalidArgumentError, type TokenCounter, type Usage } from "@bulkhead/core";
import { BudgetExceededError } from "../budget-exceeded-error.js";
import { Budget, type Lease } from "../create-budget.js";
import { createTokenCounter, type BudgetTokenCounter } from "../create-token-counter.js";
import type { Tracker } from "../create-tracker.js";
import { normalizeUsage, usageOnly } from "../normalize-usage.js";

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
}

function promptText(prompt: LanguageModelV3Prompt): string {
  let text = "";
  for (const message of prompt) {
    text += `${message.role}\n`;
    if (typeof message.content === "string") text += `${message.content}\n`;
    else for (const part of message.content) if (part.type === "text" || part.type === "reasoning") text += `${part.text}\n`;
  }
  return text;
}

function fromAiSdk(usage: LanguageModelV3Usage | undefined, fallback: Usage): Usage {
  if (!usage || usage.inputTokens?.total === undefined || usage.outputTokens?.total === undefined) return fallback;
  return usageOnly(normalizeUsage("ai-sdk", usage));
}

/**
 * Embeds the budget in the Vercel AI SDK (`wrapLanguageModel({ model, middleware })`): each call
 * reserves its prompt (counted) and its output (`maxOutputTokens`, or what the budget has left)
 * before it runs, refuses with {@link BudgetExceededError} when that does not fit, settles with
 * the provider's usage after, stops a stream at the reserved output keeping the partial text
 * (finish reason `length`), and books what was counted when a stream is aborted.
 *
 * @example
 * const model = wrapLanguageModel({ model: openai("gpt-4o"), middleware: budgetMiddleware({ budget, tracker }) });
 */
export function budgetMiddleware({
  budget,
  tracker,
  repo = "default",
  operation = "generate",
  counter,
  defaultMaxOutputTokens = 4096,
}: BudgetMiddlewareOptions): LanguageModelV3Middleware {
  if (!(budget instanceof Budget)) throw new InvalidArgumentError("options.budget", "expected a Budget from createBudget");
  let ownCounter: BudgetTokenCounter | undefined;
  const count = (text: string) => Number((counter ?? (ownCounter ??= createTokenCounter({ encoding: "o200k_base" }))).count(text));

  const reserve = (params: {
    prompt: LanguageModelV3Prompt;
    maxOutputTokens?: number;
  }): { lease: Lease; inputTokens: number; outputLimit: number } => {
    const inputTokens = count(promptText(params.prompt));
    const wanted = params.maxOutputTokens ?? defaultMaxOutputTokens;
    const room = Math.min(budget.available("generation"), budget.available("sessionTotal") - inputTokens);
    const outputLimit = Math.min(wanted, room);
    if (outputLimit <= 0)
      throw new BudgetExceededError(
        budget.id,
        "generation",
        wanted,
        Math.max(0, room),
        budget.limit("generation") ?? budget.limit("sessionTotal") ?? 0,
      );
    return { lease: budget.reserve({ contextRead: inputTokens, generation: outputLimit }), inputTokens, outputLimit };
  };
  const record = (usage: Usage) => {
    const span = tracker?.startSpan({ repo, operation });
    try {
      span?.record(usage);
    } finally {
      span?.end();
    }
  };

  return {
    specificationVersion: "v3",
    async wrapGenerate({ doGenerate, params }) {
      const { lease, inputTokens } = reserve(params);
      let result;
      try {
        result = await doGenerate();
      } catch (error) {
        budget.release(lease);
        throw error;
      }
      const usage = fromAiSdk(result.usage, { ...emptyUsage(), inputTokens, uncachedInputTokens: inputTokens });
      budget.settle(lease, usage);
      record(usage);
      return result;
    },
    async wrapStream({ doStream, params }) {
      const { lease, inputTokens, outputLimit } = reserve(params);
      let upstream;
      try {
        upstream = await doStream();
      } catch (error) {
        budget.release(lease);
        throw error;
      }
      let outputTokens = 0;
      let settled = false;
      const settle = (usage: Usage) => {
        if (settled) return;
        settled = true;
        budget.settle(lease, usage);
        record(usage);
      };
      const counted = () => ({ ...emptyUsage(), inputTokens, uncachedInputTokens: inputTokens, outputTokens });
      const reader = upstream.stream.getReader();
      // An aborted call may never cancel this stream: book what was counted when the signal fires.
      params.abortSignal?.addEventListener(
        "abort",
        () => {
          settle(counted());
          void reader.cancel(params.abortSignal?.reason).catch(() => undefined);
        },
        { once: true },
      );
      const stream = new ReadableStream<LanguageModelV3StreamPart>({
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
            settle(fromAiSdk(part.usage, counted()));
            controller.enqueue(part);
            return;
          }
          if (part.type === "text-delta" || part.type === "reasoning-delta") {
            const tokens = count(part.delta);
            if (outputTokens + tokens > outputLimit) {
              // The generation budget is reached: cancel upstream, keep what fit, finish as "length".
              await reader.cancel("generation budget reached").catch(() => undefined);
              settle(counted());
              controller.enqueue({
                type: "finish",
                finishReason: { unified: "length", raw: "bulkhead-generation-budget" },
                usage: {
                  inputTokens: { total: inputTokens, noCache: inputTokens, cacheRead: 0, cacheWrite: 0 },
                  outputTokens: { total: outputTokens, text: outputTokens, reasoning: undefined },
                },
              });
              controller.close();
              return;
            }
            outputTokens += tokens;
          }
          controller.enqueue(part);
        },
        async cancel(reason) {
          // The consumer aborted: book what was counted so the spend is not lost.
          settle(counted());
          await reader.cancel(reason).catch(() => undefined);
        },
      });
      return { ...upstream, stream };
    },
  };
}

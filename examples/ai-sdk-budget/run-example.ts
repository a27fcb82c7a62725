// The budget guard embedded in a Vercel AI SDK agent loop. The model is the SDK's own mock
// (`MockLanguageModelV4` from `ai/test`, ai@7): no network, no API key, the same code path as a real
// provider. Swap `scriptedModel()` for `anthropic("claude-sonnet-4-5")` and nothing else changes.
import type { LanguageModelV4StreamPart } from "@ai-sdk/provider";
import { BudgetExceededError, budgetMiddleware, createBudget, createTracker, type Budget } from "@bulkhead/budget";
import type { UsageReport } from "@bulkhead/core";
import { simulateReadableStream, streamText, wrapLanguageModel } from "ai";
import { MockLanguageModelV4 } from "ai/test";

/** A model that answers every call with `words` one-token words, then reports its usage. */
function scriptedModel(words: number): MockLanguageModelV4 {
  return new MockLanguageModelV4({
    doStream: async () => ({
      stream: simulateReadableStream({
        chunks: [
          { type: "stream-start", warnings: [] },
          { type: "text-start", id: "answer" },
          ...Array.from({ length: words }, () => ({ type: "text-delta" as const, id: "answer", delta: " step" })),
          { type: "text-end", id: "answer" },
          {
            type: "finish",
            finishReason: { unified: "stop", raw: "end_turn" },
            usage: {
              inputTokens: { total: 120, noCache: 20, cacheRead: 100, cacheWrite: 0 },
              outputTokens: { total: words, text: words, reasoning: 0 },
            },
          },
        ] satisfies LanguageModelV4StreamPart[],
      }),
    }),
  });
}

export interface AiSdkExampleResult {
  /** One entry per model call that ran: why it finished and how many characters it produced. */
  calls: { finishReason: string; characters: number }[];
  /** How many times the model itself was called. */
  modelCalls: number;
  /** The refusal that ended the loop, before the model ran. */
  refusal: BudgetExceededError | undefined;
  snapshot: ReturnType<Budget["snapshot"]>;
  report: UsageReport;
}

/**
 * An agent loop that keeps asking the model for the next step until the generation budget says
 * no. Three things happen on the way: full answers settle with the provider's usage, the call
 * that would overshoot is cut at the tokens that are left (finish reason `length`, partial text
 * kept), and the next call is refused before it reaches the model.
 */
export async function runAiSdkBudgetExample({ log = () => undefined }: { log?: (line: string) => void } = {}): Promise<AiSdkExampleResult> {
  const budget = createBudget({ id: "rate-limit", limits: { generation: 100, sessionTotal: 2_000 } });
  const tracker = createTracker({ taskId: "rate-limit" });
  const inner = scriptedModel(40);
  const model = wrapLanguageModel({
    model: inner,
    middleware: budgetMiddleware({ budget, tracker, repo: "backend-api", operation: "plan" }),
  });

  const calls: AiSdkExampleResult["calls"] = [];
  let refusal: BudgetExceededError | undefined;
  for (let step = 1; step <= 10 && !refusal; step++) {
    // streamText reports errors through onError and rejects `text` with NoOutputGeneratedError.
    let streamError: unknown;
    try {
      const result = streamText({
        model,
        prompt: `Plan step ${step} of the rate limiter.`,
        maxOutputTokens: 50,
        maxRetries: 0,
        onError: ({ error }) => void (streamError = error),
      });
      const text = await result.text;
      const finishReason = await result.finishReason;
      calls.push({ finishReason, characters: text.length });
      log(`call ${step}: ${finishReason}, ${budget.available("generation")} generation tokens left`);
    } catch (error) {
      const reason = streamError ?? error;
      refusal = BudgetExceededError.isInstance(reason) ? reason : undefined;
      if (!refusal) throw reason;
      log(`call ${step}: refused before the model ran: ${refusal.message}`);
    }
  }
  const report = tracker.report();
  log(`spent ${report.totalTokens} tokens (${report.generationTokens} generated) over ${calls.length} calls`);
  return { calls, modelCalls: inner.doStreamCalls.length, refusal, snapshot: budget.snapshot(), report };
}

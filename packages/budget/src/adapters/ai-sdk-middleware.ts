import { InvalidArgumentError, type TokenCounter, type Usage } from "@bulkhead/core";
import { Budget, type Lease } from "../create-budget.js";
import { createTokenCounter, type BudgetTokenCounter } from "../create-token-counter.js";
import type { Tracker } from "../create-tracker.js";
import { normalizeUsage, usageOnly } from "../normalize-usage.js";
import { createCallMeter, estimatedUsage } from "./call-meter.js";
import { OutputMeter, tokenCeiling } from "../output-meter.js";

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
  // The provider's `raw` usage is among the fields normalizeUsage("ai-sdk") knows and skips.
  return usageOnly(normalizeUsage("ai-sdk", usage));
}

/**
 * Settles a stream the consumer dropped unfinished: ai@7 and ai@6 keep a result's stream for
 * replay (`result.text` still resolves after a `break` out of `textStream`), so a `break` never
 * cancels the model's stream and only the result's collection shows the call is over. The held
 * value books what was counted and cancels the upstream; it must not reference what is registered
 * (the metered stream, or the writer of the pipe), or that would never be collected.
 */
const dropped = new FinalizationRegistry<() => void>((settleDropped) => settleDropped());

const getReader = ReadableStream.prototype.getReader;
const pipeThrough = ReadableStream.prototype.pipeThrough as (this: ReadableStream, ...args: unknown[]) => ReadableStream;
const cancelStream = ReadableStream.prototype.cancel;

type ReadResult = { done: false; value: Part } | { done: true; value?: Part | undefined };
/** Where checked parts go: a stream's controller, or the writer of a pipe. */
type Sink = { enqueue(part: Part): void; close(): void };

/**
 * `source.pipeThrough(transform)` as the platform runs it (read, write, wait while the writer is
 * full; an upstream error aborts the writer, a closed or failed writer cancels the source), with
 * `step` seeing each part first. Defined here, outside the middleware's closures, so the
 * writer is reachable only from the pipe (the finalization of a dropped stream relies on it).
 */
function pipeParts(
  reader: ReadableStreamDefaultReader<Part>,
  writer: WritableStreamDefaultWriter<Part>,
  step: (sink: Sink, next: ReadResult) => void | Promise<void>,
  onError: (error: unknown) => void,
  onCancel: (reason: unknown) => void,
): void {
  let done = false;
  const sink: Sink = {
    enqueue: (part) => void writer.write(part).catch(() => undefined),
    close: () => {
      done = true;
      void writer.close().catch(() => undefined);
    },
  };
  const fail = (error: unknown) => {
    if (done) return;
    done = true;
    onError(error);
    void writer.abort(error).catch(() => undefined);
  };
  const pump = (): void => {
    if (done) return;
    if ((writer.desiredSize ?? 1) <= 0) {
      writer.ready.then(pump, () => undefined);
      return;
    }
    reader.read().then((next) => {
      let after;
      try {
        after = step(sink, next);
      } catch (error) {
        // A part the check cannot take (a malformed usage): the pipe fails, as a failed pull would.
        fail(error);
        void reader.cancel(error).catch(() => undefined);
        return;
      }
      if (after) after.then(pump, fail);
      else pump();
    }, fail);
  };
  writer.closed.catch((reason: unknown) => {
    if (done) return;
    done = true;
    onCancel(reason);
  });
  pump();
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
  /**
   * Reserves the prompt and the output. While the budget has room for a ceiling of the prompt's
   * tokens (from its UTF-8 length) and the whole output asked for, the ceiling is reserved and the
   * prompt is not tokenized: the provider's usage settles it. Nearer the limit it is counted, so
   * the output limit is not lowered by the ceiling. `inputTokens()` counts it when a fallback needs it.
   */
  const reserve = (params: AiSdkCallOptions): { lease: Lease; inputTokens: () => number; outputLimit: number } => {
    const text = promptText(params.prompt);
    const wanted = params.maxOutputTokens ?? defaultMaxOutputTokens;
    const ceiling = tokenCeiling(text);
    let exact: number | undefined;
    const roomy =
      ceiling <= budget.available("contextRead") &&
      wanted <= budget.available("generation") &&
      ceiling + wanted <= budget.available("sessionTotal");
    const reserved = roomy ? ceiling : (exact = count(text));
    const outputLimit = meter.outputLimit(reserved, wanted);
    return { lease: meter.reserve(reserved, outputLimit), inputTokens: () => (exact ??= count(text)), outputLimit };
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
        fromAiSdk((result as { usage?: unknown }).usage, () => estimatedUsage(inputTokens(), 0)),
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
      const output = new OutputMeter({ count }, outputLimit);
      let settled = false;
      // Takes the usage as a function: the local count (tokenizing the prompt and the output) is
      // work only a stream that ends without the provider's usage needs.
      const settle = (usage: () => Usage) => {
        if (settled) return;
        settled = true;
        dropped.unregister(onDropped);
        params.abortSignal?.removeEventListener("abort", onAbort);
        let spent: Usage;
        try {
          spent = usage();
        } catch (error) {
          // A usage that cannot be read (InvalidUsageError): book the local count, then fail the stream.
          book(lease, counted(), model.modelId);
          throw error;
        }
        book(lease, spent, model.modelId);
      };
      const counted = () => estimatedUsage(inputTokens(), output.tokens);
      const source = upstream.stream as ReadableStream<Part>;
      /** Our reader of the model's stream, taken when someone first reads it. */
      let reader: ReadableStreamDefaultReader<Part> | undefined;
      const stop = (reason: unknown) => {
        settle(counted);
        return (reader ? reader.cancel(reason) : cancelStream.call(source, reason)).catch(() => undefined);
      };
      // An aborted call may never cancel this stream: book what was counted when the signal fires.
      const onAbort = () => void stop(params.abortSignal?.reason);
      const onDropped = () => void stop("the stream was dropped unfinished");
      params.abortSignal?.addEventListener("abort", onAbort, { once: true });
      /** One part on its way, checked synchronously: passed on, or the stream ends there. */
      const forward = (sink: Sink, next: ReadResult): void | Promise<void> => {
        if (next.done) {
          settle(counted);
          sink.close();
          return;
        }
        const part = next.value;
        if (part.type === "finish") {
          settle(() => fromAiSdk(part.usage, counted));
        } else if ((part.type === "text-delta" || part.type === "reasoning-delta") && typeof part.delta === "string") {
          if (!output.admitText(part.delta)) {
            // The generation budget is reached: cancel upstream, keep what fit, finish as "length".
            const outputTokens = output.tokens;
            const promptTokens = inputTokens();
            return stop("generation budget reached").then(() => {
              sink.enqueue({
                type: "finish",
                finishReason: { unified: "length", raw: "bulkhead-generation-budget" },
                usage: {
                  inputTokens: { total: promptTokens, noCache: promptTokens, cacheRead: 0, cacheWrite: 0 },
                  outputTokens: { total: outputTokens, text: outputTokens, reasoning: undefined },
                },
              } as Part);
              sink.close();
            });
          }
        }
        sink.enqueue(part);
        return;
      };
      const failed = () => settle(counted);
      // The AI SDK reads a model's stream with `pipeThrough(transform)`: that pipe is run here
      // (see pipeParts), so metering adds no second stream. Every other way to read it (a reader,
      // `pipeTo`, `tee`, `for await`, a pipe with options) gets a metered stream of the same parts.
      let metered: ReadableStream<Part> | undefined;
      const asStream = (): ReadableStream<Part> => {
        if (metered) return metered;
        const own = (reader ??= (
          native ? getReader.call(source) : (source as { getReader(): unknown }).getReader()
        ) as ReadableStreamDefaultReader<Part>);
        metered = new ReadableStream<Part>({
          pull: (controller) =>
            own.read().then(
              (next) => forward(controller, next),
              (error: unknown) => {
                failed();
                throw error;
              },
            ),
          // The consumer cancelled: book what was counted so the spend is not lost.
          cancel: (reason) => stop(reason),
        });
        dropped.register(metered, onDropped, onDropped);
        return metered;
      };
      // A stream that is not the platform's, or that cannot take own methods: the metered copy.
      const native = source instanceof ReadableStream;
      if (!native || !Object.isExtensible(source)) return { ...upstream, stream: asStream() };
      const methods = source as unknown as Record<string | symbol, unknown>;
      methods.pipeThrough = (transform: { writable: WritableStream<Part>; readable: ReadableStream<unknown> }, options?: unknown) => {
        if (options !== undefined || metered || reader)
          return pipeThrough.call(metered ?? (reader ? source : asStream()), transform, options);
        const writer = transform.writable.getWriter();
        reader = getReader.call(source) as ReadableStreamDefaultReader<Part>;
        pipeParts(reader, writer, forward, failed, (reason) => void stop(reason));
        dropped.register(writer, onDropped, onDropped);
        return transform.readable;
      };
      for (const name of ["getReader", "pipeTo", "tee", "values"] as const) {
        const method = ReadableStream.prototype[name] as (...args: unknown[]) => unknown;
        methods[name] = (...args: unknown[]) => method.apply(asStream(), args);
      }
      methods[Symbol.asyncIterator] = (...args: unknown[]) =>
        (ReadableStream.prototype.values as (...args: unknown[]) => unknown).apply(asStream(), args);
      methods.cancel = (reason?: unknown) => (metered || reader ? cancelStream.call(source, reason) : stop(reason));
      return upstream;
    },
  };
}

/**
 * Embeds the budget in the Vercel AI SDK 7 (`wrapLanguageModel({ model, middleware })`, a
 * `LanguageModelV4Middleware`; for ai@6 use {@link budgetMiddlewareV3}). Each call reserves its
 * prompt (a ceiling of its tokens while the budget has room, its count near the limits) and its
 * output (`maxOutputTokens`, or what the budget has left) before it runs, refuses with
 * {@link BudgetExceededError} when that does not fit, settles with the provider's usage after
 * (priced by the model's id), stops a stream at the reserved output keeping the partial text
 * (finish reason `length`), and books what was counted when a stream is aborted, cancelled, or
 * dropped unfinished (a `break` out of `textStream`: booked when the result is collected; see
 * docs/adapters.md). Every step of a tool loop is its own metered call.
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

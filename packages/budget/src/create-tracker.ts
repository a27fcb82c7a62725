import {
  addUsage,
  emptyUsage,
  InvalidArgumentError,
  type Usage,
  type UsageBreakdown,
  type UsageReport,
  usageSchema,
  validateOptions,
} from "@bulkhead/core";
import type { Ledger, RestoreOptions } from "./ledger.js";
import { priceUsage } from "./price-usage.js";
import type { PriceEntry } from "./prices.js";
import { UnknownModelError } from "./unknown-model-error.js";

/** Operations whose tokens count as tool calls in a report; everything else is model calls. */
export const TOOL_OPERATIONS = /^(tool|tool-call|tools)(:|$)/;

/**
 * The part of an OpenTelemetry `Tracer` the tracker uses (`@opentelemetry/api` is an optional
 * peer: pass `trace.getTracer("bulkhead")`).
 */
export interface OtelTracerLike {
  startSpan(
    name: string,
    options?: { attributes?: Record<string, string | number> },
  ): { setAttributes(attributes: Record<string, string | number>): unknown; end(): void };
}

/** The cost attribute, namespaced until OpenTelemetry's `gen_ai.usage.cost.*` is accepted. */
export const OTEL_COST_ATTRIBUTE = "bulkhead.usage.cost_usd";

export interface TrackerOptions {
  taskId: string;
  /** Each span is also an OpenTelemetry span with the GenAI `gen_ai.usage.*` attributes. */
  tracer?: OtelTracerLike;
  /** Where usage records go durably. */
  ledger?: Ledger;
  /** Price entries that take precedence over the bundled table. */
  prices?: readonly PriceEntry[];
  /** The clock, for tests. @default Date.now */
  now?: () => number;
}

/** One unit of attributed work: a repo and an operation (`plan`, `edit`, `tool:test`, ...). */
export interface Span {
  readonly repo: string;
  readonly operation: string;
  /**
   * Records a usage; with a model, it is priced. A model no price is known for never throws here
   * (the call was paid): the tokens are recorded, the dollars left unknown, and the model listed
   * in the report's `unpricedModels`.
   */
  record(usage: Usage, options?: { model?: string }): void;
  /** Ends the span; later records throw. Idempotent. */
  end(): void;
}

/** seed 000's TokenTracker, done properly: spans by repo and operation, priced, durable. */
export interface Tracker {
  readonly taskId: string;
  startSpan(attributes: { repo: string; operation: string; model?: string }): Span;
  /**
   * Totals by seed 000's budget kinds, by repo and by operation, with dollars and cache hit rate.
   * `usd` leaves out usage listed in `unpricedModels` (its dollars are unknown, not zero).
   */
  report(): UsageReport & { cacheHitRate: number; unpricedModels: string[] };
  /** Applies a ledger record during replay. */
  replay(record: { task: string; repo: string; operation: string; model?: string; usage: Usage; usd?: number }): void;
}

interface Row {
  repo: string;
  operation: string;
  usage: Usage;
  usd: number | undefined;
}

function breakdown(rows: readonly Row[], key: "repo" | "operation"): Record<string, UsageBreakdown> {
  const groups: Record<string, UsageBreakdown> = {};
  for (const row of rows) {
    const group = (groups[row[key]] ??= { usage: emptyUsage(), totalTokens: 0 });
    group.usage = addUsage(group.usage, row.usage);
    group.totalTokens += row.usage.inputTokens + row.usage.outputTokens;
    if (row.usd !== undefined) group.usd = (group.usd ?? 0) + row.usd;
  }
  return groups;
}

/**
 * Creates a tracker that attributes usage to spans (repo, operation) of one task and reports it
 * as core's `UsageReport`. Input tokens of model calls count as context read, their output as
 * generation, and both sides of `tool:*` operations as tool calls; the three add up to the total.
 *
 * @example
 * const tracker = createTracker({ taskId: "rate-limit" });
 * const span = tracker.startSpan({ repo: "backend-api", operation: "edit", model: "claude-sonnet-4-5" });
 * span.record(normalizeUsage("anthropic", response.usage));
 * span.end();
 * tracker.report().byRepo["backend-api"].totalTokens;
 */
export function createTracker({ taskId, ledger, prices = [], now = Date.now, tracer }: TrackerOptions): Tracker {
  if (typeof taskId !== "string" || taskId === "") throw new InvalidArgumentError("options.taskId", "expected the task's id");
  const rows: Row[] = [];
  const unpriced = new Set<string>();
  const price = (usage: Usage, model: string): number | undefined => {
    try {
      return priceUsage(usage, { model, prices }).usd;
    } catch (error) {
      if (!UnknownModelError.isInstance(error)) throw error;
      unpriced.add(model);
      return undefined;
    }
  };
  const tracker: Tracker = {
    taskId,
    startSpan({ repo, operation, model }) {
      if (typeof repo !== "string" || repo === "") throw new InvalidArgumentError("repo", "expected the repo the work is attributed to");
      if (typeof operation !== "string" || operation === "")
        throw new InvalidArgumentError("operation", "expected an operation name, e.g. edit or tool:test");
      let ended = false;
      const tool = TOOL_OPERATIONS.test(operation);
      const otel = tracer?.startSpan(`${tool ? "execute_tool" : "chat"} ${model ?? repo}`, {
        attributes: {
          "gen_ai.operation.name": tool ? "execute_tool" : "chat",
          ...(model ? { "gen_ai.request.model": model } : {}),
          "bulkhead.task.id": taskId,
          "bulkhead.repo": repo,
          "bulkhead.operation": operation,
        },
      });
      let total = emptyUsage();
      let cost: number | undefined;
      return {
        repo,
        operation,
        record(usage, options = {}) {
          if (ended) throw new InvalidArgumentError("span", `span ${repo}/${operation} has ended: start a new span`);
          const valid = validateOptions(usageSchema, usage, "usage");
          const priceModel = options.model ?? model;
          const usd = priceModel === undefined ? undefined : price(valid, priceModel);
          rows.push({ repo, operation, usage: valid, usd });
          if (otel) {
            // GenAI conventions: input_tokens includes cached tokens, which core's inputTokens does.
            total = addUsage(total, valid);
            if (usd !== undefined) cost = (cost ?? 0) + usd;
            otel.setAttributes({
              "gen_ai.usage.input_tokens": total.inputTokens,
              "gen_ai.usage.output_tokens": total.outputTokens,
              "gen_ai.usage.cache_read.input_tokens": total.cacheReadTokens,
              "gen_ai.usage.cache_creation.input_tokens": total.cacheWrite5mTokens + total.cacheWrite1hTokens,
              "gen_ai.usage.reasoning.output_tokens": total.reasoningTokens,
              ...(cost === undefined ? {} : { [OTEL_COST_ATTRIBUTE]: cost }),
            });
          }
          ledger?.append({
            type: "usage",
            at: now(),
            task: taskId,
            repo,
            operation,
            usage: valid,
            ...(priceModel === undefined ? {} : { model: priceModel }),
            ...(usd === undefined ? {} : { usd }),
          });
        },
        end() {
          if (!ended) otel?.end();
          ended = true;
        },
      };
    },
    report() {
      let usage = emptyUsage();
      let contextReadTokens = 0;
      let generationTokens = 0;
      let toolCallTokens = 0;
      let usd: number | undefined;
      for (const row of rows) {
        usage = addUsage(usage, row.usage);
        if (TOOL_OPERATIONS.test(row.operation)) toolCallTokens += row.usage.inputTokens + row.usage.outputTokens;
        else {
          contextReadTokens += row.usage.inputTokens;
          generationTokens += row.usage.outputTokens;
        }
        if (row.usd !== undefined) usd = (usd ?? 0) + row.usd;
      }
      return {
        taskId,
        contextReadTokens,
        generationTokens,
        toolCallTokens,
        totalTokens: contextReadTokens + generationTokens + toolCallTokens,
        ...(usd === undefined ? {} : { usd }),
        usage,
        byRepo: breakdown(rows, "repo"),
        byOperation: breakdown(rows, "operation"),
        cacheHitRate: usage.inputTokens === 0 ? 0 : usage.cacheReadTokens / usage.inputTokens,
        unpricedModels: [...unpriced],
      };
    },
    replay(record) {
      if (record.task !== taskId) return;
      rows.push({ repo: record.repo, operation: record.operation, usage: usageSchema.parse(record.usage), usd: record.usd });
      if (record.model !== undefined && record.usd === undefined) unpriced.add(record.model);
    },
  };
  return tracker;
}

/** Rebuilds a tracker's report from a ledger, exactly as recorded. */
export async function restoreTracker(options: TrackerOptions & RestoreOptions): Promise<Tracker> {
  const { events, corruptLines, tornTail } = await options.ledger.read();
  if (corruptLines > 0 || tornTail) options.onSkipped?.({ corruptLines, tornTail });
  const tracker = createTracker(options);
  for (const event of events) if (event.type === "usage") tracker.replay(event);
  return tracker;
}

import { InvalidArgumentError, type TokenCounter } from "@bulkhead/core";
import { formatAmount } from "../budget-exceeded-error.js";
import { Budget, type Lease } from "../create-budget.js";
import { createTokenCounter, type BudgetTokenCounter } from "../create-token-counter.js";
import { createClaudeMeter, type ClaudeCodeStreamResult, type MeterClaudeCodeStreamOptions } from "./meter-claude-code-stream.js";

/** The options of {@link budgetHooks}. */
export interface BudgetHooksOptions {
  /** The budget whose tool-call limit (and session total, dollars) the hooks enforce. */
  budget: Budget;
  /**
   * The most tool calls allowed, counted across the main agent and its subagents.
   * @default undefined (no count limit; the tool-call budget still applies)
   */
  maxToolCalls?: number;
  /** Counts tool inputs and results. @default an o200k_base counter */
  counter?: TokenCounter;
}

/** The hook output the Claude Agent SDK reads (`HookJSONOutput`), the parts this adapter sends. */
export type BudgetHookOutput =
  | { continue: true }
  | { hookSpecificOutput: { hookEventName: "PreToolUse"; permissionDecision: "deny"; permissionDecisionReason: string } };

/** A hook callback as the Agent SDK calls it (`HookCallback`), typed by structure. */
export type BudgetHookCallback = (
  input: { hook_event_name: string },
  toolUseId: string | undefined,
  options: { signal: AbortSignal },
) => Promise<BudgetHookOutput>;

/** `Options.hooks` of the Agent SDK: spread it into your own hooks. */
export interface BudgetHooks {
  PreToolUse: { hooks: BudgetHookCallback[] }[];
  PostToolUse: { hooks: BudgetHookCallback[] }[];
  PostToolUseFailure: { hooks: BudgetHookCallback[] }[];
}

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null;
const text = (value: unknown) => (typeof value === "string" ? value : (JSON.stringify(value) ?? ""));

/**
 * The tool-call budget as Claude Agent SDK hooks (`query({ prompt, options: { hooks: budgetHooks({ budget }) } })`):
 * `PreToolUse` reserves the call's input tokens (`beforeToolCall`) and denies the call, with a
 * message for the model that says what was spent, when the tool budget, the session total, the
 * dollar budget or `maxToolCalls` says no; `PostToolUse` settles the call with its input and
 * result tokens; `PostToolUseFailure` settles its input. Hooks run under every permission mode
 * (`canUseTool` does not run under `acceptEdits`), and for subagents' tool calls too.
 *
 * @example
 * const hooks = budgetHooks({ budget, maxToolCalls: 40 });
 * for await (const message of meterAgentSdk(query({ prompt, options: { hooks } }), { budget })) console.log(message.type);
 */
export function budgetHooks(options: BudgetHooksOptions): BudgetHooks {
  const { budget, maxToolCalls, counter } = options ?? ({} as Partial<BudgetHooksOptions>);
  if (!Budget.isInstance(budget)) throw new InvalidArgumentError("options.budget", "expected a Budget from createBudget");
  if (maxToolCalls !== undefined && !(Number.isInteger(maxToolCalls) && maxToolCalls >= 0))
    throw new InvalidArgumentError("options.maxToolCalls", `expected a whole number of calls, got ${maxToolCalls}`);
  let ownCounter: BudgetTokenCounter | undefined;
  const count = (value: unknown) => Number((counter ?? (ownCounter ??= createTokenCounter({ encoding: "o200k_base" }))).count(text(value)));
  const leases = new Map<string, { lease: Lease; inputTokens: number }>();
  let calls = 0;
  const deny = (reason: string): BudgetHookOutput => ({
    hookSpecificOutput: { hookEventName: "PreToolUse", permissionDecision: "deny", permissionDecisionReason: reason },
  });

  const pre: BudgetHookCallback = async (input, toolUseId) => {
    const event = input as Json;
    if (event.hook_event_name !== "PreToolUse") return { continue: true };
    const tool = typeof event.tool_name === "string" ? event.tool_name : "tool";
    const id = typeof event.tool_use_id === "string" ? event.tool_use_id : (toolUseId ?? `call-${calls}`);
    if (maxToolCalls !== undefined && calls >= maxToolCalls)
      return deny(
        `Tool call limit reached: ${calls} of ${maxToolCalls} tool calls made (${formatAmount("toolCalls", budget.used("toolCalls"))} spent on tools). Do not call ${tool} or any other tool again; finish the task with what you have and say what is left.`,
      );
    const inputTokens = count(event.tool_input);
    const decision = budget.beforeToolCall({ tool, inputTokens });
    if (!decision.allowed) return deny(decision.message);
    calls++;
    leases.set(id, { lease: decision.lease, inputTokens });
    return { continue: true };
  };
  const post: BudgetHookCallback = async (input, toolUseId) => {
    const event = input as Json;
    const id = typeof event.tool_use_id === "string" ? event.tool_use_id : toolUseId;
    const held = id === undefined ? undefined : leases.get(id);
    if (!held || id === undefined) return { continue: true };
    leases.delete(id);
    const resultTokens = event.hook_event_name === "PostToolUse" ? count(event.tool_response) : 0;
    if (held.lease.state === "active" || held.lease.state === "expired")
      budget.settle({ lease: held.lease, spent: held.inputTokens + resultTokens });
    return { continue: true };
  };
  return { PreToolUse: [{ hooks: [pre] }], PostToolUse: [{ hooks: [post] }], PostToolUseFailure: [{ hooks: [post] }] };
}

/** Options of {@link meterAgentSdk}: those of the stream-json meter. */
export type MeterAgentSdkOptions = MeterClaudeCodeStreamOptions;

/** A metered query: the SDK's own `Query`, whose messages are booked as they are read. */
export type MeteredQuery<TQuery> = TQuery & {
  /** What the run consumed so far and how it ended (complete once iteration is done). */
  readonly metered: ClaudeCodeStreamResult;
};

/**
 * Meters a Claude Agent SDK run (`query()` from `@anthropic-ai/claude-agent-sdk`) from the SDK's
 * own message objects as they are read: assistant messages once per message id, the main agent's
 * and its subagents' (`parent_tool_use_id`), `stream_event` usage with `includePartialMessages`,
 * and the result's totals and cost. The same `Query` comes back (`interrupt()`, `setModel()`, …
 * still work); when the budget runs out, `onStop` is called once, by default `query.interrupt()`,
 * and the iteration then ends cleanly. Pass `includePartialMessages: true` to the query for exact
 * output counts while messages generate (assistant messages carry their usage as of their start).
 *
 * @example
 * const run = meterAgentSdk(query({ prompt, options }), { budget, tracker });
 * for await (const message of run) if (message.type === "result") console.log(run.metered.usage);
 */
export function meterAgentSdk<TQuery extends AsyncIterable<unknown>>(
  query: TQuery,
  options: MeterAgentSdkOptions = {},
): MeteredQuery<TQuery> {
  if (!isObject(query) || typeof (query as AsyncIterable<unknown>)[Symbol.asyncIterator] !== "function")
    throw new InvalidArgumentError("query", "expected the Query that query() from @anthropic-ai/claude-agent-sdk returns");
  const interrupt = (query as { interrupt?: () => Promise<void> }).interrupt;
  const meter = createClaudeMeter({
    ...options,
    onStop:
      options.onStop ??
      (() => {
        void interrupt?.call(query).catch(() => undefined);
      }),
  });
  let number = 0;
  const iterator = (query as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  const next = async (...args: [] | [unknown]): Promise<IteratorResult<unknown>> => {
    let step: IteratorResult<unknown>;
    try {
      step = await iterator.next(...args);
    } catch (error) {
      // The run was interrupted because the budget ran out: that is how it ends, not a failure.
      if (!meter.stopped) throw error;
      meter.end();
      return { done: true, value: undefined };
    }
    if (step.done) meter.end();
    else if (isObject(step.value)) meter.observe(step.value as Json, `message-${++number}`);
    return step;
  };
  const proxy: MeteredQuery<TQuery> = new Proxy(query, {
    get(target, property) {
      if (property === "metered") return meter.result;
      if (property === "next") return next;
      if (property === Symbol.asyncIterator) return () => proxy;
      if (property === "return")
        return async (value?: unknown) => {
          meter.end();
          return iterator.return ? iterator.return(value) : { done: true, value };
        };
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  }) as unknown as MeteredQuery<TQuery>;
  return proxy;
}

// The public API of @bulkhead/budget: one deliberate list.
export {
  budgetMiddleware,
  budgetMiddlewareV3,
  type AiSdkCallOptions,
  type BudgetLanguageModelMiddleware,
  type BudgetMiddlewareOptions,
} from "./adapters/ai-sdk-middleware.js";
export { anthropicDeltaTextBytes, hasBytesAt, sseFields } from "./adapters/observe-sse.js";
export { meterAnthropic, type AnthropicLike, type AnthropicParams, type MeterAnthropicOptions } from "./adapters/meter-anthropic.js";
export {
  budgetHooks,
  meterAgentSdk,
  type BudgetHookCallback,
  type BudgetHookOutput,
  type BudgetHooks,
  type BudgetHooksOptions,
  type MeterAgentSdkOptions,
  type MeteredQuery,
} from "./adapters/claude-agent-sdk.js";
export { meterCodexStream, type CodexStreamResult, type MeterCodexStreamOptions } from "./adapters/meter-codex-stream.js";
export { meterOpenAI, type MeterOpenAIOptions, type OpenAILike } from "./adapters/meter-openai.js";
export {
  meterClaudeCodeStream,
  type ClaudeCodeStreamResult,
  type MeterClaudeCodeStreamOptions,
} from "./adapters/meter-claude-code-stream.js";
export { BudgetExceededError, type BudgetExceededData, type BudgetExceededErrorOptions } from "./budget-exceeded-error.js";
export { BUDGET_ACTIONS, BUDGET_KINDS, type BudgetAction, type BudgetKind } from "./budget-kinds.js";
export {
  Budget,
  createBudget,
  restoreBudget,
  type BudgetEvents,
  type BookOptions,
  type ChargeOptions,
  type ExtendOptions,
  type ReserveOptions,
  type SettleOptions,
  type BudgetLimits,
  type ContextCheck,
  type CreateBudgetOptions,
  type Lease,
  type MeterResult,
  type MeterStreamOptions,
  type StreamChunk,
  type ToolCallDecision,
} from "./create-budget.js";
export {
  createTokenCounter,
  MESSAGE_FRAMING,
  TOKENIZER_ENGINES,
  type BudgetTokenCounter,
  type ChatMessage,
  type CreateTokenCounterOptions,
  type TokenCount,
  type TokenizerEngine,
  type ToolDefinition,
} from "./create-token-counter.js";
export {
  createTracker,
  OTEL_COST_ATTRIBUTE,
  restoreTracker,
  TOOL_OPERATIONS,
  type OtelTracerLike,
  type Span,
  type Tracker,
  type TrackerOptions,
} from "./create-tracker.js";
export { CLAUDE_FACTORS, CLAUDE_UPPER_BOUND_MARGIN, ENCODINGS, type Encoding } from "./encodings.js";
export { InvalidUsageError } from "./invalid-usage-error.js";
export { LeaseNotActiveError } from "./lease-not-active-error.js";
export { createFileBudgetStore, createMemoryBudgetStore } from "./file-budget-store.js";
export {
  createFileLedger,
  createMemoryLedger,
  parseLedger,
  type FileLedgerOptions,
  type Ledger,
  type LedgerContents,
  type LedgerEvent,
  type RestoreOptions,
} from "./ledger.js";
export { OutputMeter, type SyncCounter } from "./output-meter.js";
export { normalizeUsage, usageOnly, USAGE_SOURCES, type NormalizedUsage, type UsageSource } from "./normalize-usage.js";
export { loadPriceTable, priceUsage, type PricedUsage, type PriceUsageOptions } from "./price-usage.js";
export { priceEntrySchema, priceTableSchema, type PriceEntry } from "./prices.js";
export { UnknownModelError } from "./unknown-model-error.js";

// The public API of @bulkhead/gateway: one deliberate list.
export {
  CALL_OUTCOMES,
  type AuditRecord,
  type BudgetAct,
  type CallOutcome,
  type SessionStats,
  type ToolSetChange,
} from "./audit-record.js";
export {
  createGateway,
  Gateway,
  type AddSessionOptions,
  type AnthropicCredential,
  type CreateGatewayOptions,
  type GatewayEvents,
  type GatewayListen,
  type GatewaySessionHandle,
  type ToolChangePolicy,
} from "./create-gateway.js";
export { GatewayFailedError } from "./gateway-failed-error.js";
export { SseParser, type SseFrame } from "./sse-parser.js";
export { GATEWAY_APIS, type GatewayApi, type GatewayProvider } from "./wire-format.js";

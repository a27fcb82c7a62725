import { createHash, randomBytes } from "node:crypto";
import { lstatSync, unlinkSync } from "node:fs";
import { appendFile, chmod } from "node:fs/promises";
import {
  Agent as HttpAgent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import {
  Budget,
  createTokenCounter,
  createTracker,
  normalizeUsage,
  OutputMeter,
  priceUsage,
  usageOnly,
  type BudgetKind,
  type BudgetTokenCounter,
  type Ledger,
  type PriceEntry,
  type Tracker,
} from "@bulkhead/budget";
import { addUsage, emptyUsage, InvalidArgumentError, lazySchema, TypedEmitter, validateOptions, type Usage } from "@bulkhead/core";
import { z } from "zod";
import type { AuditRecord, CallOutcome, SessionStats, ToolSetChange } from "./audit-record.js";
import { GatewayFailedError } from "./gateway-failed-error.js";
import { SseParser } from "./sse-parser.js";
import { anthropicCountTokens, anthropicMessages } from "./wire-anthropic.js";
import {
  errorResponse,
  isObject,
  type GatewayApi,
  type GatewayProvider,
  type Json,
  type PreparedRequest,
  type ToolFingerprint,
  type WireErrorKind,
  type WireFormat,
} from "./wire-format.js";
import { openAiChat, openAiResponses } from "./wire-openai.js";

/** Where the gateway listens: a TCP address, or a unix socket path. */
export type GatewayListen = { host?: string; port?: number } | { path: string; mode?: number };

/** The real credential of one provider; it stays on the host. */
export type AnthropicCredential = { apiKey: string } | { oauthToken: string };

export interface CreateGatewayOptions {
  /**
   * One address or several; each TCP address and socket path serves the same sessions.
   * A socket's file mode defaults to 0o666: the session token, not the file mode, is the lock.
   * @default { host: "127.0.0.1", port: 0 } (a free loopback port)
   */
  listen?: GatewayListen | GatewayListen[];
  /**
   * The upstream base URL of each provider, without `/v1`.
   * @default env BULKHEAD_UPSTREAM_ANTHROPIC, else https://api.anthropic.com; env BULKHEAD_UPSTREAM_OPENAI, else https://api.openai.com
   */
  upstreams?: { anthropic?: string; openai?: string };
  /**
   * The real credentials sent upstream in place of the session token.
   * @default from the environment: ANTHROPIC_API_KEY, else CLAUDE_CODE_OAUTH_TOKEN (a Claude
   * subscription, sent as `Authorization: Bearer` with the `oauth-2025-04-20` beta); OPENAI_API_KEY
   */
  credentials?: { anthropic?: AnthropicCredential; openai?: { apiKey: string } };
  /** The environment read for upstreams and credentials. @default process.env */
  env?: Record<string, string | undefined>;
  /** The largest request body accepted; larger ones get a 413 without being read further. @default 33_554_432 (32 MiB) */
  maxBodyBytes?: number;
  /** How long the upstream may take to send its response headers, in ms. @default 600_000 */
  timeoutMs?: number;
  /** How long the upstream may stay silent in the middle of a response, in ms. @default 300_000 */
  idleTimeoutMs?: number;
  /** Appends every audit record to this JSONL file. */
  auditFile?: string;
  /** Price entries that take precedence over budget's bundled table. */
  prices?: readonly PriceEntry[];
  /** Closes the gateway when aborted. */
  abortSignal?: AbortSignal;
}

/** What happens to a request whose tool set differs from the session's first one. */
export type ToolChangePolicy = "report" | "refuse";

export interface AddSessionOptions {
  /** Names the session in events, audit records and spans. */
  sessionId: string;
  /** The budget every call of the session reserves on and settles to. */
  budget: Budget;
  /** Where usage is attributed. @default a tracker with taskId = sessionId, writing to `ledger` */
  tracker?: Tracker;
  /** The ledger of the default tracker (ignored when `tracker` is given). */
  ledger?: Ledger;
  /** The repo spans are attributed to. @default the sessionId */
  repo?: string;
  /** The operation of each call's span. @default "model-call" */
  operation?: string;
  policy?: {
    /** @default "report": an event and the audit record; "refuse" also answers with an API error. */
    toolChanges?: ToolChangePolicy;
  };
}

/** A live session: its token is the API key the agent uses. */
export interface GatewaySessionHandle {
  readonly sessionId: string;
  /** The per-session API key (`x-api-key` for Anthropic, `Authorization: Bearer` for OpenAI). 256 random bits. */
  readonly token: string;
  /** Revokes the token; calls in flight finish. Idempotent. */
  remove(): SessionStats;
}

/** Events of a {@link Gateway}. */
export interface GatewayEvents {
  "call-start": {
    sessionId: string;
    callId: string;
    api: GatewayApi;
    model: string | undefined;
    stream: boolean;
    inputEstimate: number;
    maxTokens: number | undefined;
  };
  "call-end": AuditRecord;
  /** A call was answered with a budget error before it was forwarded. */
  "budget-refused": { sessionId: string; callId: string; kind: BudgetKind; message: string };
  /** A stream was ended by the gateway at the generation budget. */
  "generation-stopped": { sessionId: string; callId: string; kind: BudgetKind; outputTokens: number };
  /** The tool-call budget is spent: this call went upstream with tool use disabled. */
  "tools-disabled": { sessionId: string; callId: string };
  /** The session's total (or dollar) budget is spent: no more calls; hand over to a new session. Once per session. */
  "handover-required": { sessionId: string; budgetId: string; kind: BudgetKind; used: number; limit: number | undefined };
  /** A request's tool set differs from the session's first one. */
  "tools-changed": { sessionId: string; callId: string; refused: boolean } & ToolSetChange;
  /** A call was booked without a price: the model is not in the price table. */
  "price-unknown": { sessionId: string; callId: string; model: string };
}

const ROUTES = new Map<string, WireFormat>([
  ["/v1/messages", anthropicMessages],
  ["/v1/messages/count_tokens", anthropicCountTokens],
  ["/v1/responses", openAiResponses],
  ["/v1/chat/completions", openAiChat],
]);

// Built on first use, not at import.
const listenSchema = lazySchema(() =>
  z.union([
    z.object({ host: z.string().min(1).optional(), port: z.number().int().min(0).max(65535).optional() }).strict(),
    z.object({ path: z.string().min(1), mode: z.number().int().min(0).max(0o777).optional() }).strict(),
  ]),
);

const urlSchema = lazySchema(() =>
  z
    .string()
    .url()
    .refine((value) => /^https?:\/\//.test(value), "expected an http:// or https:// URL"),
);

const optionsSchema = lazySchema(() =>
  z
    .object({
      listen: z.union([listenSchema(), z.array(listenSchema()).min(1)]).optional(),
      upstreams: z.object({ anthropic: urlSchema().optional(), openai: urlSchema().optional() }).strict().optional(),
      credentials: z
        .object({
          anthropic: z
            .union([z.object({ apiKey: z.string().min(1) }).strict(), z.object({ oauthToken: z.string().min(1) }).strict()])
            .optional(),
          openai: z
            .object({ apiKey: z.string().min(1) })
            .strict()
            .optional(),
        })
        .strict()
        .optional(),
      env: z.record(z.string(), z.string().optional()).optional(),
      maxBodyBytes: z.number().int().positive().optional(),
      timeoutMs: z.number().int().positive().optional(),
      idleTimeoutMs: z.number().int().positive().optional(),
      auditFile: z.string().min(1).optional(),
      prices: z.array(z.any()).optional(),
      abortSignal: z.instanceof(AbortSignal).optional(),
    })
    .strict(),
);

const sessionSchema = lazySchema(() =>
  z
    .object({
      sessionId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/, "letters, digits, '.', '_', ':', '/' or '-', up to 128"),
      budget: z.custom<Budget>((value) => Budget.isInstance(value), "expected a Budget from createBudget"),
      tracker: z
        .custom<Tracker>((value) => isObject(value) && typeof (value as Json).startSpan === "function", "expected a Tracker")
        .optional(),
      ledger: z.custom<Ledger>((value) => isObject(value) && typeof (value as Json).append === "function", "expected a Ledger").optional(),
      repo: z.string().min(1).optional(),
      operation: z.string().min(1).optional(),
      policy: z
        .object({ toolChanges: z.enum(["report", "refuse"]).optional() })
        .strict()
        .optional(),
    })
    .strict(),
);

/** A body of this size is never buffered from the upstream: an answer larger than this is a broken upstream. */
const MAX_UPSTREAM_BODY_BYTES = 64 * 1024 * 1024;

/** How far a client may fall behind a stream before the upstream is paused. */
const STREAM_BUFFER_BYTES = 256 * 1024;

/** Request headers never forwarded: hop-by-hop ones, and the client's credentials. */
const DROPPED_REQUEST_HEADERS = new Set([
  "host",
  "connection",
  "keep-alive",
  "transfer-encoding",
  "content-length",
  "x-api-key",
  "authorization",
  "proxy-authorization",
  "proxy-connection",
  "upgrade",
  "te",
  "trailer",
  "expect",
  "accept-encoding",
  "cookie",
]);

/** Response headers passed back to the client; everything else stays at the gateway. */
const PASSED_RESPONSE_HEADER =
  /^(content-type|request-id|x-request-id|retry-after|x-should-retry|anthropic-ratelimit-.*|x-ratelimit-.*|openai-.*)$/;

const OAUTH_BETA = "oauth-2025-04-20";

const hashToken = (token: string) => createHash("sha256").update(token).digest("hex");

/** Anthropic SDKs send `x-api-key`; OpenAI's and Claude's OAuth clients send a bearer token. */
function tokenOf(headers: IncomingHttpHeaders): string | undefined {
  const key = headers["x-api-key"];
  if (typeof key === "string" && key !== "") return key;
  const authorization = headers.authorization;
  if (typeof authorization === "string" && /^bearer /i.test(authorization)) return authorization.slice(7).trim();
  return undefined;
}

function guessProvider(headers: IncomingHttpHeaders, path: string): GatewayProvider {
  if (headers["x-api-key"] !== undefined || headers["anthropic-version"] !== undefined) return "anthropic";
  return /^\/v1\/(chat|responses|completions|embeddings|models)/.test(path) || headers.authorization ? "openai" : "anthropic";
}

class BodyTooLarge extends Error {}
class UpstreamTimeout extends Error {}

/** Reads a request body, never holding more than `limit` bytes. */
function readBody(request: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(request.headers["content-length"]);
    if (Number.isFinite(declared) && declared > limit) return reject(new BodyTooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        request.off("data", onData);
        request.pause();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    };
    request.on("data", onData);
    request.once("end", () => resolve(Buffer.concat(chunks, size)));
    request.once("error", reject);
    request.once("aborted", () => reject(new Error("the client aborted the request")));
  });
}

interface Session {
  readonly options: AddSessionOptions & { repo: string; operation: string; toolChanges: ToolChangePolicy };
  readonly tokenHash: string;
  readonly tracker: Tracker;
  readonly records: AuditRecord[];
  toolSet: Map<string, string> | undefined;
  readonly chargedToolResults: Set<string>;
  handoverSent: boolean;
  removed: boolean;
}

/** A call in flight: what finishing it needs. */
interface Call {
  readonly session: Session;
  readonly wire: WireFormat;
  readonly record: AuditRecord;
  readonly started: number;
  readonly counter: BudgetTokenCounter;
  inputTokens: number;
  /** The output a stream may deliver: the reserved generation when a budget limits it, else unbounded. */
  allowance: number;
  lease: ReturnType<Budget["tryReserve"]>;
  finished: boolean;
}

/**
 * The model gateway: an HTTP server on the host that is a session's only door to its model.
 * It speaks the Anthropic Messages API and OpenAI's Responses and Chat Completions APIs,
 * swaps each session's token for the real credential, meters every call from the upstream's
 * own usage, and enforces the session's budgets on the wire. See docs/gateway.md.
 */
// Set by the class's static block: the one way to build and start a gateway.
let start: (options: z.output<ReturnType<typeof optionsSchema>>) => Promise<Gateway>;

export class Gateway extends TypedEmitter<GatewayEvents> implements AsyncDisposable {
  readonly #servers: Server[] = [];
  readonly #addresses: ({ host: string; port: number } | { path: string })[] = [];
  readonly #sessions = new Map<string, Session>();
  readonly #byToken = new Map<string, Session>();
  readonly #upstreams: Record<GatewayProvider, URL>;
  readonly #credentials: { anthropic?: AnthropicCredential; openai?: { apiKey: string } };
  readonly #secrets: Buffer[];
  readonly #maxBodyBytes: number;
  readonly #timeoutMs: number;
  readonly #idleTimeoutMs: number;
  readonly #auditFile: string | undefined;
  readonly #prices: readonly PriceEntry[];
  readonly #agents = {
    http: new HttpAgent({ keepAlive: true, maxSockets: 256 }),
    https: new HttpsAgent({ keepAlive: true, maxSockets: 256 }),
  };
  readonly #counters = new Map<string, BudgetTokenCounter>();
  readonly #inflight = new Set<AbortController>();
  readonly #pending = new Set<Promise<void>>();
  #auditQueue: string[] = [];
  #auditWriting: Promise<void> = Promise.resolve();
  #nextCall = 0;
  #closing: Promise<void> | undefined;

  static {
    // createGateway is the one way to get a started gateway: construction and listening stay private.
    start = async (options) => {
      const gateway = new Gateway(options);
      const listen = options.listen === undefined ? [{}] : Array.isArray(options.listen) ? options.listen : [options.listen];
      await gateway.#listen(listen as GatewayListen[], options.abortSignal);
      return gateway;
    };
  }

  private constructor(options: z.output<ReturnType<typeof optionsSchema>>) {
    super();
    const env = options.env ?? process.env;
    const upstream = (value: string | undefined, name: string, fallback: string) => {
      const url = value ?? env[name] ?? fallback;
      const parsed = urlSchema().safeParse(url);
      if (!parsed.success) throw new InvalidArgumentError(name, `expected an http(s) URL, got ${JSON.stringify(url)}`);
      return new URL(url);
    };
    this.#upstreams = {
      anthropic: upstream(options.upstreams?.anthropic, "BULKHEAD_UPSTREAM_ANTHROPIC", "https://api.anthropic.com"),
      openai: upstream(options.upstreams?.openai, "BULKHEAD_UPSTREAM_OPENAI", "https://api.openai.com"),
    };
    const anthropic: AnthropicCredential | undefined =
      options.credentials?.anthropic ??
      (env.ANTHROPIC_API_KEY
        ? { apiKey: env.ANTHROPIC_API_KEY }
        : env.CLAUDE_CODE_OAUTH_TOKEN
          ? { oauthToken: env.CLAUDE_CODE_OAUTH_TOKEN }
          : undefined);
    const openai = options.credentials?.openai ?? (env.OPENAI_API_KEY ? { apiKey: env.OPENAI_API_KEY } : undefined);
    this.#credentials = { ...(anthropic ? { anthropic } : {}), ...(openai ? { openai } : {}) };
    this.#secrets = [anthropic && ("apiKey" in anthropic ? anthropic.apiKey : anthropic.oauthToken), openai?.apiKey]
      .filter((secret): secret is string => typeof secret === "string" && secret.length >= 8)
      .map((secret) => Buffer.from(secret));
    this.#maxBodyBytes = options.maxBodyBytes ?? 32 * 1024 * 1024;
    this.#timeoutMs = options.timeoutMs ?? 600_000;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 300_000;
    this.#auditFile = options.auditFile;
    this.#prices = options.prices ?? [];
  }

  async #listen(listen: GatewayListen[], abortSignal: AbortSignal | undefined): Promise<void> {
    try {
      for (const address of listen) {
        const server = createServer((request, response) => this.#track(this.#serve(request, response)));
        // Streams can last long; a slow request body is bounded by maxBodyBytes, not a clock.
        server.requestTimeout = 0;
        server.keepAliveTimeout = 65_000;
        this.#servers.push(server);
        if ("path" in address) {
          removeStaleSocket(address.path);
          await new Promise<void>((resolve, reject) => server.once("error", reject).listen(address.path, () => resolve()));
          await chmod(address.path, address.mode ?? 0o666);
          this.#addresses.push({ path: address.path });
        } else {
          const host = address.host ?? "127.0.0.1";
          await new Promise<void>((resolve, reject) => server.once("error", reject).listen(address.port ?? 0, host, () => resolve()));
          this.#addresses.push({ host, port: (server.address() as AddressInfo).port });
        }
      }
    } catch (error) {
      await this.close();
      throw new GatewayFailedError(`the gateway could not listen: ${(error as Error).message}: choose another port or socket path`, {
        cause: error,
      });
    }
    if (abortSignal) {
      if (abortSignal.aborted) await this.close();
      else abortSignal.addEventListener("abort", () => void this.close(), { once: true });
    }
  }

  /** The addresses listened on, in the order given. */
  get addresses(): readonly ({ host: string; port: number } | { path: string })[] {
    return this.#addresses;
  }

  /** `http://host:port` of the first TCP address (the Anthropic base URL), or undefined with only sockets. */
  get url(): string | undefined {
    const tcp = this.#addresses.find((address): address is { host: string; port: number } => "port" in address);
    return tcp && `http://${tcp.host.includes(":") ? `[${tcp.host}]` : tcp.host}:${tcp.port}`;
  }

  /** The base URL for Anthropic clients (`ANTHROPIC_BASE_URL`). */
  get anthropicBaseUrl(): string | undefined {
    return this.url;
  }

  /** The base URL for OpenAI clients (`baseURL`, Codex's `base_url`): the gateway's `/v1`. */
  get openaiBaseUrl(): string | undefined {
    return this.url && `${this.url}/v1`;
  }

  /** Registers a session and returns its token. A session id can be live once. */
  addSession(options: AddSessionOptions): GatewaySessionHandle {
    if (this.#closing) throw new GatewayFailedError("the gateway is closed: create a new one");
    const parsed = validateOptions(sessionSchema(), options, "options") as AddSessionOptions;
    if (this.#sessions.has(parsed.sessionId))
      throw new InvalidArgumentError(
        "options.sessionId",
        `session "${parsed.sessionId}" is already live: remove it first or use another id`,
      );
    const token = `bh-${randomBytes(32).toString("base64url")}`;
    const session: Session = {
      options: {
        ...parsed,
        repo: parsed.repo ?? parsed.sessionId,
        operation: parsed.operation ?? "model-call",
        toolChanges: parsed.policy?.toolChanges ?? "report",
      },
      tokenHash: hashToken(token),
      tracker:
        parsed.tracker ??
        createTracker({ taskId: parsed.sessionId, ...(parsed.ledger ? { ledger: parsed.ledger } : {}), prices: this.#prices }),
      records: [],
      toolSet: undefined,
      chargedToolResults: new Set(),
      handoverSent: false,
      removed: false,
    };
    this.#sessions.set(parsed.sessionId, session);
    this.#byToken.set(session.tokenHash, session);
    return { sessionId: parsed.sessionId, token, remove: () => this.removeSession(parsed.sessionId) };
  }

  /** Revokes a session's token and returns its totals; its records stay queryable. Idempotent. */
  removeSession(sessionId: string): SessionStats {
    const session = this.#session(sessionId);
    session.removed = true;
    this.#byToken.delete(session.tokenHash);
    return this.stats(sessionId);
  }

  /** The audit records of a session's calls, oldest first. */
  audit(sessionId: string): readonly AuditRecord[] {
    return [...this.#session(sessionId).records];
  }

  /** A session's totals: calls, usage, dollars, cache hit rate. */
  stats(sessionId: string): SessionStats {
    const session = this.#session(sessionId);
    let usage = emptyUsage();
    let costUsd = 0;
    let unpricedCalls = 0;
    for (const record of session.records) {
      if (record.usage) usage = addUsage(usage, record.usage);
      if (typeof record.costUsd === "number") costUsd += record.costUsd;
      else if (record.costUsd === null) unpricedCalls++;
    }
    return {
      sessionId,
      calls: session.records.length,
      usage,
      costUsd,
      unpricedCalls,
      cacheHitRate: usage.inputTokens === 0 ? 0 : usage.cacheReadTokens / usage.inputTokens,
    };
  }

  /** The tracker a session's calls are attributed to. */
  tracker(sessionId: string): Tracker {
    return this.#session(sessionId).tracker;
  }

  /** Stops listening, ends calls in flight (streams end with an API error event), writes the audit file. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const closed = Promise.all(this.#servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
      for (const controller of this.#inflight) controller.abort(new Error("the gateway is closing"));
      // Calls in flight end their responses on abort; a client still sending its body does not,
      // so connections are cut after a grace period.
      let grace: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([Promise.allSettled([...this.#pending]), new Promise((resolve) => (grace = setTimeout(resolve, 1_000)))]);
      clearTimeout(grace);
      for (const server of this.#servers) server.closeAllConnections();
      await Promise.allSettled([...this.#pending]);
      await closed;
      this.#agents.http.destroy();
      this.#agents.https.destroy();
      for (const counter of this.#counters.values()) counter.dispose();
      this.#counters.clear();
      await this.#flushAudit();
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #session(sessionId: string): Session {
    const session = this.#sessions.get(sessionId);
    if (!session) throw new InvalidArgumentError("sessionId", `no session "${sessionId}" was added to this gateway`);
    return session;
  }

  #track(work: Promise<void>): void {
    const tracked = work.catch(() => undefined).finally(() => this.#pending.delete(tracked));
    this.#pending.add(tracked);
  }

  #counter(model: string | undefined): BudgetTokenCounter {
    const key = model ?? "";
    let counter = this.#counters.get(key);
    if (!counter) {
      try {
        counter = model ? createTokenCounter({ model }) : createTokenCounter({ encoding: "o200k_base" });
      } catch {
        // A model with no known tokenizer: o200k_base, with the upper bound widened below.
        counter = createTokenCounter({ encoding: "o200k_base" });
      }
      this.#counters.set(key, counter);
    }
    return counter;
  }

  async #serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const started = performance.now();
    const at = new Date().toISOString();
    const path = request.url ?? "/";
    const pathname = path.split("?")[0]!;
    const wire = request.method === "POST" ? ROUTES.get(pathname) : undefined;
    const provider = wire?.provider ?? guessProvider(request.headers, pathname);
    if (!wire) {
      return this.#sendError(
        response,
        provider,
        "not-found",
        `bulkhead gateway: no route for ${request.method} ${pathname}: it serves POST /v1/messages, /v1/messages/count_tokens, /v1/responses and /v1/chat/completions`,
        true,
      );
    }
    const token = tokenOf(request.headers);
    const session = token === undefined ? undefined : this.#byToken.get(hashToken(token));
    if (!session || session.removed) {
      return this.#sendError(
        response,
        provider,
        "authentication",
        "bulkhead gateway: the API key is not a live session token: use the token gateway.addSession returned",
        true,
      );
    }
    const record: AuditRecord = {
      sessionId: session.options.sessionId,
      callId: `call-${++this.#nextCall}`,
      at,
      api: wire.api,
      model: undefined,
      stream: false,
      status: 0,
      outcome: "ok",
      durationMs: 0,
      usage: undefined,
      usageSource: undefined,
      costUsd: undefined,
      budget: [],
      inputEstimate: 0,
      toolResultTokens: 0,
    };
    const badRequest = (kind: WireErrorKind, message: string, closeConnection = false) => {
      record.outcome = "bad-request";
      record.error = message;
      this.#sendError(response, provider, kind, message, closeConnection);
      record.status = response.statusCode;
      this.#finishRecord(session, record, started);
    };
    let raw: Buffer;
    try {
      raw = await readBody(request, this.#maxBodyBytes);
    } catch (error) {
      if (error instanceof BodyTooLarge)
        return badRequest(
          "too-large",
          `bulkhead gateway: the request body is over the ${this.#maxBodyBytes}-byte limit (maxBodyBytes): send a shorter conversation`,
          true,
        );
      record.outcome = "client-closed";
      record.error = (error as Error).message;
      return this.#finishRecord(session, record, started);
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString("utf8"));
    } catch (error) {
      return badRequest("invalid-request", `bulkhead gateway: the request body is not valid JSON: ${(error as Error).message}`);
    }
    if (!isObject(body)) return badRequest("invalid-request", "bulkhead gateway: the request body must be a JSON object");
    let prepared: PreparedRequest;
    try {
      prepared = wire.prepare(body);
    } catch (problem) {
      if (typeof problem !== "string") throw problem;
      return badRequest("invalid-request", `bulkhead gateway: not a valid ${wire.api} request: ${problem}`);
    }
    record.model = prepared.model;
    record.stream = prepared.stream;
    await this.#call(session, wire, prepared, body, raw, path, request, response, record, started);
  }

  async #call(
    session: Session,
    wire: WireFormat,
    prepared: PreparedRequest,
    body: Json,
    raw: Buffer,
    path: string,
    request: IncomingMessage,
    response: ServerResponse,
    record: AuditRecord,
    started: number,
  ): Promise<void> {
    const { budget, sessionId } = session.options;
    const counter = this.#counter(prepared.model);
    const call: Call = { session, wire, record, started, counter, inputTokens: 0, allowance: Infinity, lease: undefined, finished: false };
    const refuse = (kind: WireErrorKind, message: string, budgetKind?: BudgetKind) => {
      record.outcome = "refused";
      record.error = message;
      if (budgetKind) {
        record.budget.push({ kind: budgetKind, action: "refused" });
        this.emit("budget-refused", { sessionId, callId: record.callId, kind: budgetKind, message });
      }
      this.#sendError(response, wire.provider, kind, message, false, true);
      record.status = response.statusCode;
      this.#finishRecord(session, record, started);
    };

    if (wire.api !== "anthropic-count-tokens") {
      // Tool definitions are an attack surface: the first set is the session's reference.
      const change = this.#toolChange(session, prepared.tools);
      if (change) {
        record.toolsChanged = change;
        const refused = session.options.toolChanges === "refuse";
        this.emit("tools-changed", { sessionId, callId: record.callId, refused, ...change });
        if (refused)
          return refuse(
            "tools-changed",
            `bulkhead gateway: this request's tools differ from the session's first tool set (added: ${change.added.join(", ") || "none"}; removed: ${change.removed.join(", ") || "none"}; changed: ${change.changed.join(", ") || "none"}) and the session's policy refuses tool changes`,
          );
      }

      if (budget.exhausted) {
        const kind = this.#exhaustedKind(budget);
        this.#handover(session, kind);
        return refuse("budget", this.#spentMessage(session, kind), kind);
      }

      // Tool results new to this session are tool-call tokens (earlier ones come back in every request).
      let toolTokens = 0;
      for (const result of prepared.toolResults) {
        if (session.chargedToolResults.has(result.id)) continue;
        session.chargedToolResults.add(result.id);
        toolTokens += counter.countWithBound(result.text).tokens;
      }
      record.toolResultTokens = toolTokens;
      // Booked on the tool-call budget only: the same tokens reach the session total as prompt
      // tokens when the call settles, from the upstream's usage.
      if (toolTokens > 0) budget.charge({ spent: { toolCalls: toolTokens, sessionTotal: 0 } });
      if (prepared.tools.length > 0 && budget.available("toolCalls") <= 0) {
        prepared.disableTools(
          `[bulkhead] The tool-call budget of this session is spent (${budget.used("toolCalls").toLocaleString("en-US")} tokens of tool results). Tool use is disabled: do not call any tool; finish with what you have and say what is left.`,
        );
        record.budget.push({ kind: "toolCalls", action: "tools-disabled" });
        this.emit("tools-disabled", { sessionId, callId: record.callId });
      }

      // The prompt, counted locally as an upper bound (Claude counts are estimates).
      let upper = 0;
      let tokens = 0;
      for (const piece of prepared.inputPieces) {
        const counted = counter.countWithBound(piece);
        upper += counted.upperBound;
        tokens += counted.tokens;
      }
      if (counter.model === undefined && prepared.model !== undefined) upper = Math.ceil(upper * 1.25);
      record.inputEstimate = upper;
      call.inputTokens = tokens;

      if (upper > budget.available("contextRead"))
        return refuse(
          "budget",
          `bulkhead gateway: the context-read budget of session "${sessionId}" does not fit this request: its prompt is up to ${upper.toLocaleString("en-US")} tokens and ${budget.available("contextRead").toLocaleString("en-US")} are left: continue in a new session with a narrower scope`,
          "contextRead",
        );
      const generation = budget.available("generation");
      const afterPrompt = budget.available("sessionTotal") - upper;
      const allowed = Math.floor(Math.min(generation, afterPrompt));
      if (allowed < 1) {
        const kind: BudgetKind = generation < 1 ? "generation" : "sessionTotal";
        if (kind === "sessionTotal") this.#handover(session, kind);
        return refuse("budget", this.#spentMessage(session, kind, kind === "sessionTotal" ? upper + 1 : undefined), kind);
      }
      let maxTokens = prepared.maxTokens;
      if (Number.isFinite(allowed) && (maxTokens === undefined || maxTokens > allowed)) {
        prepared.setMaxTokens(allowed);
        record.budget.push({ kind: generation <= afterPrompt ? "generation" : "sessionTotal", action: "clamped" });
        record.maxTokens = { requested: maxTokens, forwarded: allowed };
        maxTokens = allowed;
      }
      if (Number.isFinite(allowed) && maxTokens !== undefined) call.allowance = maxTokens;
      let refusedKind: BudgetKind | undefined;
      const onRefused = (event: { kind: BudgetKind }) => void (refusedKind ??= event.kind);
      budget.on("budget-refused", onRefused);
      try {
        call.lease = budget.tryReserve({ amounts: { contextRead: upper, generation: maxTokens ?? 0 } });
      } finally {
        budget.off("budget-refused", onRefused);
      }
      if (!call.lease) {
        const kind = refusedKind ?? "sessionTotal";
        if (budget.exhausted) this.#handover(session, this.#exhaustedKind(budget));
        const needed = kind === "contextRead" ? upper : kind === "generation" ? (maxTokens ?? 0) : upper + (maxTokens ?? 0);
        return refuse("budget", this.#spentMessage(session, kind, needed), kind);
      }
    }

    const credential = this.#credentialHeaders(wire.provider, request.headers);
    if (!credential) {
      this.#release(call);
      return refuse(
        "no-credential",
        `bulkhead gateway: no ${wire.provider === "anthropic" ? "Anthropic credential (ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN)" : "OpenAI credential (OPENAI_API_KEY)"} is configured on the host: set it in the gateway's environment or credentials option`,
      );
    }
    const upstreamBody = prepared.modified ? Buffer.from(JSON.stringify(body)) : raw;
    this.emit("call-start", {
      sessionId,
      callId: record.callId,
      api: wire.api,
      model: prepared.model,
      stream: prepared.stream,
      inputEstimate: record.inputEstimate,
      maxTokens: prepared.maxTokens,
    });

    const controller = new AbortController();
    this.#inflight.add(controller);
    const onClientClose = () => {
      if (!response.writableFinished) {
        if (!call.finished) record.outcome = "client-closed";
        controller.abort(new Error("the client closed the connection"));
      }
    };
    response.once("close", onClientClose);
    try {
      let upstream: IncomingMessage;
      try {
        upstream = await this.#forward(
          wire.provider,
          path,
          { ...credential, "content-length": String(upstreamBody.length) },
          upstreamBody,
          controller.signal,
        );
      } catch (error) {
        this.#release(call);
        if (record.outcome === "client-closed") return this.#finishCall(call);
        const timeout = error instanceof UpstreamTimeout;
        record.outcome = timeout ? "upstream-timeout" : "upstream-dropped";
        record.error = timeout
          ? `the upstream sent no response within ${this.#timeoutMs} ms (timeoutMs)`
          : `the upstream request failed: ${(error as Error).message}`;
        this.#sendError(response, wire.provider, timeout ? "timeout" : "upstream", `bulkhead gateway: ${record.error}`);
        record.status = response.statusCode;
        return this.#finishCall(call);
      }
      const status = upstream.statusCode ?? 502;
      const contentType = String(upstream.headers["content-type"] ?? "");
      if (status < 400 && prepared.stream && contentType.includes("text/event-stream"))
        await this.#pipeStream(call, prepared, upstream, response, controller);
      else await this.#passBody(call, upstream, response, status, controller);
    } finally {
      response.off("close", onClientClose);
      this.#inflight.delete(controller);
    }
  }

  /** A non-streamed answer (or an error status): read whole, booked from its usage, passed on as its bytes. */
  async #passBody(
    call: Call,
    upstream: IncomingMessage,
    response: ServerResponse,
    status: number,
    controller: AbortController,
  ): Promise<void> {
    const { record, wire } = call;
    let bytes: Buffer;
    try {
      bytes = await this.#readUpstream(upstream, controller.signal);
    } catch (error) {
      this.#release(call);
      if (record.outcome !== "client-closed") {
        const timeout = error instanceof UpstreamTimeout;
        record.outcome = timeout ? "upstream-timeout" : "upstream-dropped";
        record.error = timeout
          ? `the upstream went silent for ${this.#idleTimeoutMs} ms (idleTimeoutMs)`
          : `the upstream's answer broke off: ${(error as Error).message}`;
        this.#sendError(response, wire.provider, timeout ? "timeout" : "upstream", `bulkhead gateway: ${record.error}`);
        record.status = response.statusCode;
      }
      return this.#finishCall(call);
    }
    bytes = this.#redact(bytes);
    response.writeHead(status, this.#responseHeaders(upstream.headers, { "content-length": String(bytes.length) }));
    response.end(bytes);
    record.status = status;
    if (status >= 400 || wire.api === "anthropic-count-tokens") {
      if (status >= 400) {
        record.outcome = "upstream-error";
        record.error = `the upstream answered ${status}`;
      }
      this.#release(call);
      return this.#finishCall(call);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString("utf8"));
    } catch {
      parsed = undefined;
    }
    const usage = isObject(parsed) ? wire.usageOf(parsed) : undefined;
    if (isObject(parsed)) record.model = wire.modelOf(parsed) ?? record.model;
    if (usage) this.#settle(call, usage, "upstream");
    else {
      record.error = "the upstream's answer carried no usage: booked the local prompt estimate";
      this.#settle(
        call,
        wire.provider === "anthropic" ? { input_tokens: call.inputTokens } : { input_tokens: call.inputTokens, output_tokens: 0 },
        "delivered",
      );
    }
    this.#finishCall(call);
  }

  /** A streamed answer: frames pass through as their bytes; the gateway only reads them, and ends the stream at the generation budget. */
  #pipeStream(
    call: Call,
    prepared: PreparedRequest,
    upstream: IncomingMessage,
    response: ServerResponse,
    controller: AbortController,
  ): Promise<void> {
    const { record, wire, counter, session } = call;
    const state = wire.createStream(prepared);
    const parser = new SseParser();
    const meter = new OutputMeter(counter, call.allowance);
    let terminal = false;
    response.writeHead(upstream.statusCode ?? 200, this.#responseHeaders(upstream.headers, {}));
    response.flushHeaders();
    record.status = upstream.statusCode ?? 200;

    return new Promise<void>((resolve) => {
      let done = false;
      // Set once the gateway itself ends the stream, so the abort it sends upstream is not read as a failure.
      let ending = false;
      const idle = setTimeout(
        () => fail("timeout", `the upstream went silent for ${this.#idleTimeoutMs} ms mid-stream (idleTimeoutMs)`),
        this.#idleTimeoutMs,
      );
      const finish = (outcome: CallOutcome) => {
        if (done) return;
        done = true;
        clearTimeout(idle);
        upstream.off("readable", pump);
        if (record.outcome !== "client-closed") record.outcome = outcome;
        record.model = state.model ?? record.model;
        if (outcome === "ok" && state.rawUsage) this.#settle(call, state.rawUsage, "upstream");
        else if (state.hasInputUsage || meter.tokens > 0) this.#settle(call, state.cutUsage(meter.tokens, call.inputTokens), "delivered");
        else this.#release(call);
        this.#finishCall(call);
        resolve();
      };
      const fail = (kind: WireErrorKind, message: string) => {
        if (done || ending) return;
        ending = true;
        record.error = message;
        if (!response.writableEnded && !response.destroyed) response.end(state.errorFrame(kind, `bulkhead gateway: ${message}`));
        controller.abort(new Error(message));
        upstream.destroy();
        finish(kind === "timeout" ? "upstream-timeout" : "upstream-dropped");
      };
      const onChunk = (chunk: Buffer) => {
        idle.refresh();
        let frames;
        try {
          frames = parser.push(chunk);
        } catch (error) {
          return fail("upstream", (error as Error).message);
        }
        // The frames passed on, as runs of adjacent bytes: most chunks become one write.
        const out: Buffer[] = [];
        let run: Buffer | undefined;
        let runLength = 0;
        const keep = (raw: Buffer) => {
          if (run && raw.buffer === run.buffer && raw.byteOffset === run.byteOffset + runLength) runLength += raw.length;
          else {
            if (run) out.push(runLength === run.length ? run : Buffer.from(run.buffer, run.byteOffset, runLength));
            run = raw;
            runLength = raw.length;
          }
        };
        let stopped = false;
        for (const frame of frames) {
          const info = state.inspect(frame);
          // A delta is decoded only if the meter must look closer than its frame's size.
          if (info.text !== undefined && !meter.admit(info.textBytes ?? frame.raw.length, info.text)) {
            stopped = true;
            break;
          }
          if (!info.drop) keep(frame.raw);
          info.delivered?.();
          if (info.terminal) terminal = true;
        }
        if (run) out.push(runLength === run.length ? run : Buffer.from(run.buffer, run.byteOffset, runLength));
        if (stopped) {
          ending = true;
          // Ended as the API ends at max_tokens: closing events with the usage, never a torn connection.
          const usage = state.cutUsage(meter.tokens, call.inputTokens);
          response.end(Buffer.concat([this.#redact(Buffer.concat(out)), Buffer.from(state.closing(usage))]));
          const kind = record.budget.find((act) => act.action === "clamped")?.kind ?? "generation";
          record.budget.push({ kind, action: "stopped" });
          this.emit("generation-stopped", {
            sessionId: session.options.sessionId,
            callId: record.callId,
            kind,
            outputTokens: meter.tokens,
          });
          controller.abort(new Error("stopped at the generation budget"));
          upstream.destroy();
          return finish("stopped");
        }
        if (out.length > 0) response.write(this.#redact(out.length === 1 ? out[0]! : Buffer.concat(out)));
      };
      // Read in paused mode: what one socket read brought (often hundreds of frames, one HTTP
      // chunk each) comes as one buffer, so the gateway handles it, and writes it, once.
      let draining = false;
      const pump = () => {
        if (draining) return;
        let chunk: Buffer | null;
        while (!done && !ending && (chunk = upstream.read() as Buffer | null) !== null) {
          onChunk(chunk);
          // Backpressure with room: reading stops only when the client falls this far behind,
          // so a brief stall of the client does not stall the stream frame by frame.
          if (response.writableLength > STREAM_BUFFER_BYTES) {
            draining = true;
            response.once("drain", () => {
              draining = false;
              pump();
            });
            return;
          }
        }
      };
      upstream.on("readable", pump);
      upstream.once("end", () => {
        const last = parser.end();
        if (last) {
          const info = state.inspect(last);
          if (!info.drop) response.write(this.#redact(last.raw));
          if (info.terminal) terminal = true;
        }
        if (!terminal) return fail("upstream", "the upstream ended the stream before its last event");
        response.end();
        finish("ok");
      });
      upstream.once("error", (error) => {
        if (record.outcome === "client-closed") return finish("client-closed");
        fail("upstream", `the upstream's stream broke off: ${error.message}`);
      });
      upstream.once("close", () => {
        if (done) return;
        if (record.outcome === "client-closed") return finish("client-closed");
        if (!upstream.complete) fail("upstream", "the upstream closed the connection mid-stream");
      });
      controller.signal.addEventListener(
        "abort",
        () => {
          if (done || ending) return;
          if (record.outcome === "client-closed") {
            upstream.destroy();
            return finish("client-closed");
          }
          fail("upstream", String((controller.signal.reason as Error)?.message ?? "aborted"));
        },
        { once: true },
      );
    });
  }

  #forward(
    provider: GatewayProvider,
    path: string,
    headers: OutgoingHttpHeaders,
    body: Buffer,
    signal: AbortSignal,
  ): Promise<IncomingMessage> {
    const base = this.#upstreams[provider];
    const target = new URL(base.pathname.replace(/\/+$/, "") + path, base);
    const secure = target.protocol === "https:";
    return new Promise((resolve, reject) => {
      const upstream = (secure ? httpsRequest : httpRequest)(target, {
        method: "POST",
        headers,
        agent: secure ? this.#agents.https : this.#agents.http,
        signal,
      });
      const timer = setTimeout(() => upstream.destroy(new UpstreamTimeout("timeout")), this.#timeoutMs);
      upstream.once("response", (message) => {
        clearTimeout(timer);
        resolve(message);
      });
      upstream.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
      upstream.end(body);
    });
  }

  #readUpstream(upstream: IncomingMessage, signal: AbortSignal): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const idle = setTimeout(() => upstream.destroy(new UpstreamTimeout("idle")), this.#idleTimeoutMs);
      const stop = (error: Error) => {
        clearTimeout(idle);
        reject(error);
      };
      upstream.on("data", (chunk: Buffer) => {
        idle.refresh();
        size += chunk.length;
        if (size > MAX_UPSTREAM_BODY_BYTES) upstream.destroy(new Error(`the upstream's answer is over ${MAX_UPSTREAM_BODY_BYTES} bytes`));
        else chunks.push(chunk);
      });
      upstream.once("end", () => {
        clearTimeout(idle);
        resolve(Buffer.concat(chunks, size));
      });
      upstream.once("error", stop);
      upstream.once("close", () => {
        if (!upstream.complete) stop(signal.aborted ? new Error("aborted") : new Error("the upstream closed the connection"));
      });
    });
  }

  /** The headers sent upstream: the client's, minus its credential and hop-by-hop ones, plus the real credential. */
  #credentialHeaders(provider: GatewayProvider, headers: IncomingHttpHeaders): OutgoingHttpHeaders | undefined {
    const credential = this.#credentials[provider];
    if (!credential) return undefined;
    const out: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(headers)) if (value !== undefined && !DROPPED_REQUEST_HEADERS.has(name)) out[name] = value;
    out["accept-encoding"] = "identity";
    if ("oauthToken" in credential) {
      out.authorization = `Bearer ${credential.oauthToken}`;
      const betas = String(headers["anthropic-beta"] ?? "")
        .split(",")
        .map((beta) => beta.trim())
        .filter(Boolean);
      if (!betas.includes(OAUTH_BETA)) betas.push(OAUTH_BETA);
      out["anthropic-beta"] = betas.join(",");
    } else if (provider === "anthropic") out["x-api-key"] = credential.apiKey;
    else out.authorization = `Bearer ${credential.apiKey}`;
    return out;
  }

  #responseHeaders(headers: IncomingHttpHeaders, extra: OutgoingHttpHeaders): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(headers)) if (value !== undefined && PASSED_RESPONSE_HEADER.test(name)) out[name] = value;
    return { ...out, ...extra };
  }

  /** The real credential never goes back to a session, even if an upstream echoes it. */
  #redact(bytes: Buffer): Buffer {
    let result = bytes;
    for (const secret of this.#secrets) {
      if (!result.includes(secret)) continue;
      result = Buffer.from(result.toString("utf8").replaceAll(secret.toString("utf8"), "[redacted by bulkhead]"));
    }
    return result;
  }

  #sendError(
    response: ServerResponse,
    provider: GatewayProvider,
    kind: WireErrorKind,
    message: string,
    closeConnection = false,
    noRetry = false,
  ): void {
    if (response.headersSent) {
      if (!response.writableEnded) response.end();
      return;
    }
    const { status, body } = errorResponse(provider, kind, message);
    const text = JSON.stringify(body);
    response.writeHead(status, {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(text)),
      ...(noRetry ? { "x-should-retry": "false" } : {}),
      ...(closeConnection ? { connection: "close" } : {}),
    });
    response.end(text);
  }

  #release(call: Call): void {
    if (!call.lease) return;
    const lease = call.lease;
    call.lease = undefined;
    if (lease.state === "active") call.session.options.budget.release(lease);
  }

  /** Books a call from a raw usage: the budget's lease, the tracker's span, the price. Never throws: the call was paid. */
  #settle(call: Call, rawUsage: Json, source: "upstream" | "delivered"): void {
    const { record, wire, session } = call;
    let usage: Usage;
    try {
      usage = normalize(wire.provider, rawUsage);
    } catch (error) {
      record.error = `the upstream's usage is malformed (${(error as Error).message}): booked the local estimate`;
      usage = { ...emptyUsage(), inputTokens: call.inputTokens, uncachedInputTokens: call.inputTokens };
      source = "delivered";
    }
    record.usage = usage;
    record.usageSource = source;
    const budget = session.options.budget;
    try {
      if (call.lease) budget.settle({ lease: call.lease, spent: usage });
      else budget.charge({ spent: usage });
    } catch (error) {
      record.error = `the budget could not book this call: ${(error as Error).message}`;
    }
    call.lease = undefined;
    const model = record.model;
    let priced = false;
    if (model !== undefined) {
      try {
        record.costUsd = priceUsage(usage, { model, prices: this.#prices }).usd;
        priced = true;
      } catch {
        record.costUsd = null;
        this.emit("price-unknown", { sessionId: session.options.sessionId, callId: record.callId, model });
      }
    } else record.costUsd = null;
    const span = session.tracker.startSpan({
      repo: session.options.repo,
      operation: session.options.operation,
      ...(priced ? { model } : {}),
    });
    try {
      span.record(usage);
    } catch {
      // The tracker has its own price table: book the usage there unpriced rather than lose it.
      session.tracker.startSpan({ repo: session.options.repo, operation: session.options.operation }).record(usage);
    } finally {
      span.end();
    }
    if (budget.exhausted) this.#handover(session, this.#exhaustedKind(budget));
  }

  #finishCall(call: Call): void {
    if (call.finished) return;
    call.finished = true;
    this.#release(call);
    this.#finishRecord(call.session, call.record, call.started);
  }

  #finishRecord(session: Session, record: AuditRecord, started: number): void {
    record.durationMs = Math.round((performance.now() - started) * 1000) / 1000;
    session.records.push(record);
    this.emit("call-end", record);
    if (this.#auditFile) {
      this.#auditQueue.push(`${JSON.stringify(record)}\n`);
      if (this.#auditQueue.length === 1) this.#auditWriting = this.#auditWriting.then(() => this.#writeAudit());
    }
  }

  async #writeAudit(): Promise<void> {
    const lines = this.#auditQueue;
    this.#auditQueue = [];
    if (lines.length > 0) await appendFile(this.#auditFile!, lines.join("")).catch(() => undefined);
  }

  async #flushAudit(): Promise<void> {
    await this.#auditWriting;
    await this.#writeAudit();
  }

  #toolChange(session: Session, tools: readonly ToolFingerprint[]): ToolSetChange | undefined {
    // A request without tools cannot use any: it neither sets nor changes the reference.
    if (tools.length === 0) return undefined;
    const current = new Map(tools.map((tool) => [tool.name, tool.sha256]));
    if (!session.toolSet) {
      session.toolSet = current;
      return undefined;
    }
    const reference = session.toolSet;
    const added = [...current.keys()].filter((name) => !reference.has(name));
    const removed = [...reference.keys()].filter((name) => !current.has(name));
    const changed = [...current.entries()]
      .filter(([name, sha]) => reference.has(name) && reference.get(name) !== sha)
      .map(([name]) => name);
    return added.length + removed.length + changed.length === 0 ? undefined : { added, removed, changed };
  }

  #exhaustedKind(budget: Budget): BudgetKind {
    for (let level: Budget | undefined = budget; level; level = level.parent) {
      for (const kind of ["sessionTotal", "usd"] as const) {
        const limit = level.limit(kind);
        if (limit !== undefined && level.used(kind) >= limit) return kind;
      }
    }
    return "sessionTotal";
  }

  #handover(session: Session, kind: BudgetKind): void {
    if (session.handoverSent) return;
    session.handoverSent = true;
    const budget = session.options.budget;
    let level: Budget = budget;
    for (let cursor: Budget | undefined = budget; cursor; cursor = cursor.parent) {
      const limit = cursor.limit(kind);
      if (limit !== undefined && cursor.used(kind) >= limit) {
        level = cursor;
        break;
      }
    }
    this.emit("handover-required", {
      sessionId: session.options.sessionId,
      budgetId: level.id,
      kind,
      used: level.used(kind),
      limit: level.limit(kind),
    });
  }

  /**
   * Why a call was refused, in the agent's terms: a budget that is spent, or (given what the call
   * needs, and something is still left) one this call does not fit.
   */
  #spentMessage(session: Session, kind: BudgetKind, needed?: number): string {
    const budget = session.options.budget;
    const id = session.options.sessionId;
    const limit = budget.limit(kind);
    const amount = (value: number) => (kind === "usd" ? `$${value.toFixed(4)}` : `${value.toLocaleString("en-US")} tokens`);
    const left = budget.available(kind);
    if (needed !== undefined && kind !== "usd" && left >= 1 && Number.isFinite(left) && needed > left) {
      const name = { generation: "generation", contextRead: "context-read", toolCalls: "tool-call", sessionTotal: "session-total" }[kind];
      return `bulkhead gateway: this call does not fit the ${name} budget of session "${id}": it needs up to ${amount(needed)} and ${amount(Math.floor(left))} are left: hand over to a new session, or ask for the budget to be extended`;
    }
    const spent = limit === undefined ? "" : ` (${amount(budget.used(kind))} of ${amount(limit)})`;
    switch (kind) {
      case "generation":
        return `bulkhead gateway: the generation budget of session "${id}" is spent${spent}: no more output can be generated in this session; hand over what is done`;
      case "usd":
        return `bulkhead gateway: the dollar budget of session "${id}" is spent${spent}: hand over to a new session`;
      case "contextRead":
        return `bulkhead gateway: the context-read budget of session "${id}" is spent${spent}: continue in a new session with a narrower scope`;
      default:
        return `bulkhead gateway: the session-total budget of session "${id}" is spent${spent}: hand over to a new session`;
    }
  }
}

/** Normalizes a raw usage; OpenAI cache writes (`cache_write_tokens`) become 5-minute cache writes. */
function normalize(provider: GatewayProvider, raw: Json): Usage {
  const normalized = normalizeUsage(provider === "anthropic" ? "anthropic" : "openai", raw);
  if (provider === "openai") {
    // Only when budget's normalizer left the field aside: if it learns the field, nothing is counted twice.
    const writes =
      normalized.unknown["input_tokens_details.cache_write_tokens"] ?? normalized.unknown["prompt_tokens_details.cache_write_tokens"];
    if (typeof writes === "number" && Number.isInteger(writes) && writes > 0 && writes <= normalized.uncachedInputTokens) {
      normalized.uncachedInputTokens -= writes;
      normalized.cacheWrite5mTokens += writes;
    }
  }
  return usageOnly(normalized);
}

/** A socket file left by a gateway that died is replaced; any other file at the path is an error. */
function removeStaleSocket(path: string): void {
  let stat;
  try {
    stat = lstatSync(path);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw new Error(`${path} exists and is not a socket`);
  unlinkSync(path);
}

/**
 * Starts a model gateway. Each session gets a token to use as its API key; the gateway checks
 * it, swaps in the real credential, meters the call from the upstream's own usage and enforces
 * the session's budget on the wire.
 *
 * @example
 * await using gateway = await createGateway({ upstreams: { anthropic: "http://127.0.0.1:8080" } });
 * const session = gateway.addSession({ sessionId: "fix-auth", budget: createBudget({ limits: { sessionTotal: 200_000 } }) });
 * // the agent: ANTHROPIC_BASE_URL=gateway.anthropicBaseUrl ANTHROPIC_API_KEY=session.token claude -p "..."
 * gateway.stats("fix-auth").cacheHitRate;
 */
export async function createGateway(options: CreateGatewayOptions = {}): Promise<Gateway> {
  return start(validateOptions(optionsSchema(), options, "options"));
}

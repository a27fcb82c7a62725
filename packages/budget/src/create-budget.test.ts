import { AbortedError, emptyUsage, parseTaskSpec, resolveScope } from "@bulkhead/core";
import { createTempDir } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { BudgetExceededError } from "./budget-exceeded-error.js";
import { createBudget, restoreBudget, type BudgetEvents } from "./create-budget.js";
import { createTokenCounter } from "./create-token-counter.js";
import { createMemoryLedger } from "./ledger.js";
import { priceUsage } from "./price-usage.js";

const usage = (inputTokens: number, outputTokens: number) => ({
  ...emptyUsage(),
  inputTokens,
  uncachedInputTokens: inputTokens,
  outputTokens,
});

function collect(budget: ReturnType<typeof createBudget>) {
  const events: string[] = [];
  budget.on("budget-warning", ({ kind, used, limit }) => events.push(`warning ${kind} ${used}/${limit}`));
  budget.on("budget-exceeded", ({ kind, action, used, limit }) => events.push(`exceeded ${kind} ${action} ${used}/${limit}`));
  budget.on("handover-required", ({ used, limit }) => events.push(`handover ${used}/${limit}`));
  return events;
}

async function* deltas(parts: string[], aborted: { value: boolean }) {
  try {
    for (const part of parts) yield part;
  } finally {
    aborted.value = true;
  }
}

describe("Budget", () => {
  it("context read, pre-execution: rejects an over-budget scope with what to narrow", async () => {
    await using dir = createTempDir();
    dir.write({ "src/big/a.ts": "x".repeat(4000), "src/small/b.ts": "y".repeat(400) });
    const spec = parseTaskSpec(
      JSON.stringify({
        task: "t",
        context_scope: { repos: [{ name: "api", paths: ["src"] }], max_files: 10, max_tokens: 100_000 },
        ownership: { primary_repo: "api" },
      }),
    );
    const scope = await resolveScope(spec, { repos: { api: dir.path }, cache: false });
    const budget = createBudget({ limits: { contextRead: 500, sessionTotal: 10_000 } });
    const check = budget.checkContext(scope);
    expect(check).toEqual({
      allowed: false,
      tokens: 1100,
      available: 500,
      reason: "context-read",
      message:
        "context of 1,100 tokens is over the context-read budget (500 tokens available): narrow the scope; largest directories: api/src (1,100 tokens), api/src/big (1,000 tokens), api/src/small (100 tokens) or raise the limit",
    });
    expect(budget.checkContext(400)).toEqual({ allowed: true, tokens: 400, available: 500 });
  });

  it("reservations hold until settled or released; spend is booked per kind and on the session total", () => {
    const budget = createBudget({ limits: { contextRead: 1000, generation: 500, sessionTotal: 2000 } });
    const lease = budget.reserve({ amounts: { contextRead: 800, generation: 400 } });
    expect(budget.reserved("sessionTotal")).toBe(1200);
    expect(budget.available("generation")).toBe(100);
    expect(() => budget.reserve({ amounts: { generation: 101 } })).toThrow(BudgetExceededError);
    expect(() => budget.reserve({ amounts: { generation: 101 } })).toThrow(
      'budget "budget" has 100 tokens of generation left of 500 tokens, not the 101 tokens requested: narrow the work or extend the budget',
    );
    expect(budget.tryReserve({ amounts: { generation: 101 } })).toBeUndefined();
    budget.settle({ lease, spent: usage(700, 350) });
    expect(budget.snapshot()).toMatchObject({
      used: { contextRead: 700, generation: 350, sessionTotal: 1050 },
      reserved: { contextRead: 0, generation: 0, sessionTotal: 0 },
      activeLeases: 0,
    });
    expect(() => budget.settle({ lease, spent: 1 })).toThrow(/is settled: settle or release a lease once/);
    const unused = budget.reserve({ amounts: { generation: 150 } });
    budget.release(unused);
    expect(budget.available("generation")).toBe(150);
  });

  it("nests task ⊂ session ⊂ team: a reservation holds at every level, all or nothing", () => {
    const team = createBudget({ id: "team", limits: { sessionTotal: 10_000 } });
    const session = createBudget({ id: "session", parent: team, limits: { sessionTotal: 3000 } });
    const task = createBudget({ id: "task", parent: session, limits: { generation: 5000 } });
    const other = createBudget({ id: "other", parent: team, limits: {} });
    const lease = task.reserve({ amounts: { generation: 2500 } });
    expect([team.reserved("sessionTotal"), session.reserved("sessionTotal"), task.reserved("generation")]).toEqual([2500, 2500, 2500]);
    expect(() => task.reserve({ amounts: { generation: 600 } })).toThrow('budget "session" has 500 tokens of sessionTotal left');
    expect([team.reserved("sessionTotal"), session.reserved("sessionTotal"), task.reserved("generation")]).toEqual([2500, 2500, 2500]);
    other.reserve({ amounts: { sessionTotal: 7000 } });
    expect(task.available("generation")).toBe(2500);
    expect(task.available("sessionTotal")).toBe(500);
    task.settle({ lease, spent: 2000 });
    expect([team.used("sessionTotal"), session.used("sessionTotal"), task.used("generation")]).toEqual([2000, 2000, 2000]);
  });

  it("tool calls, per invocation: blocks further tool use with a message for the model", () => {
    const budget = createBudget({ limits: { toolCalls: 1000 } });
    const first = budget.beforeToolCall({ tool: "run_tests", inputTokens: 200 });
    if (!first.allowed) throw new Error("expected the first call to be allowed");
    budget.settle({ lease: first.lease, spent: 1000 });
    const second = budget.beforeToolCall({ tool: "run_tests", inputTokens: 10 });
    expect(second).toEqual({
      allowed: false,
      reason: "tool-calls",
      message:
        "Tool budget exhausted: 1,000 tokens of 1,000 tokens spent on tool calls. Do not call run_tests or any other tool again; finish the task with what you have and say what is left.",
    });
  });

  it("session total, cumulative: emits handover-required and marks the budget exhausted without throwing", () => {
    const budget = createBudget({ limits: { sessionTotal: 1000 } });
    const events = collect(budget);
    const lease = budget.reserve({ amounts: { contextRead: 300, generation: 200 } });
    budget.settle({ lease, spent: usage(500, 350) });
    expect(events).toEqual(["warning sessionTotal 850/1000"]);
    budget.charge({ spent: usage(100, 100) });
    expect(events).toEqual(["warning sessionTotal 850/1000", "exceeded sessionTotal handover 1050/1000", "handover 1050/1000"]);
    expect(budget.exhausted).toBe(true);
    expect(() => budget.reserve({ amounts: { generation: 1 } })).toThrow(BudgetExceededError);
    expect(budget.beforeToolCall({ tool: "grep", inputTokens: 1 })).toMatchObject({ allowed: false, reason: "session-total" });
    budget.extend({ kind: "sessionTotal", amount: 500, approvedBy: "ana", reason: "finish the tests" });
    expect(budget.exhausted).toBe(false);
    expect(budget.extensions).toEqual([
      expect.objectContaining({ kind: "sessionTotal", amount: 500, approvedBy: "ana", reason: "finish the tests" }),
    ]);
    expect(() => budget.extend({ kind: "generation", amount: 10, approvedBy: "ana" })).toThrow(
      'budget "budget" has no generation limit to extend',
    );
    expect(() => budget.extend({ kind: "sessionTotal", amount: 10, approvedBy: " " })).toThrow("say who approved the extension");
  });

  it("generation, mid-execution: stops a stream at the limit, aborts upstream and keeps the partial text", async () => {
    using counter = createTokenCounter({ encoding: "o200k_base" });
    const budget = createBudget({ limits: { generation: 12 } });
    const events = collect(budget);
    const upstream = new AbortController();
    const closed = { value: false };
    const words = Array.from({ length: 40 }, (_, index) => ` word${index}`);
    const result = await budget.meterStream(deltas(words, closed), { counter, abortController: upstream });
    expect(result.stoppedBy).toBe("generation");
    expect(upstream.signal.aborted).toBe(true);
    expect(closed.value).toBe(true);
    expect(counter.count(result.text)).toBeLessThanOrEqual(12);
    expect(words.join("").startsWith(result.text)).toBe(true);
    expect(result.text.length).toBeGreaterThan(0);
    expect(budget.used("generation")).toBe(result.outputTokens);
    expect(events.at(-1)).toBe(`exceeded generation stop ${result.outputTokens}/12`);
    result.reconcile(usage(50, 14));
    expect(budget.used("generation")).toBe(14);
    expect(budget.used("contextRead")).toBe(50);
    expect(() => result.reconcile(usage(1, 1))).toThrow("already reconciled");
  });

  it("books what a stream used when the caller aborts it", async () => {
    using counter = createTokenCounter({ encoding: "o200k_base" });
    const budget = createBudget({ limits: { generation: 1000 } });
    const controller = new AbortController();
    async function* slow() {
      yield "first chunk";
      controller.abort();
      yield "second chunk";
    }
    const upstream = new AbortController();
    const error = await budget
      .meterStream(slow(), { counter, abortSignal: controller.signal, abortController: upstream })
      .catch((caught: unknown) => caught);
    // An abort ends as everywhere in bulkhead: AbortedError, with the signal's reason as cause.
    expect(AbortedError.isInstance(error)).toBe(true);
    expect((error as AbortedError).cause).toBe(controller.signal.reason);
    expect(upstream.signal.aborted).toBe(true);
    // Both chunks were generated (the second arrived as the abort did): both are booked.
    expect(budget.used("generation")).toBe(counter.count("first chunk") + counter.count("second chunk"));
    expect(budget.snapshot()).toMatchObject({ activeLeases: 0, reserved: { generation: 0 } });
  });

  it("leaves a stalled stream as soon as the caller aborts, booking what arrived", async () => {
    using counter = createTokenCounter({ encoding: "o200k_base" });
    const budget = createBudget({ limits: { generation: 1000 } });
    const controller = new AbortController();
    async function* stalled() {
      yield "first chunk";
      // The consumer is now waiting for the next delta, which never comes.
      setImmediate(() => controller.abort(new Error("the user pressed stop")));
      await new Promise(() => undefined);
    }
    await expect(budget.meterStream(stalled(), { counter, abortSignal: controller.signal })).rejects.toSatisfy(
      (error: unknown) => AbortedError.isInstance(error) && (error.cause as Error).message === "the user pressed stop",
    );
    expect(budget.used("generation")).toBe(counter.count("first chunk"));
    expect(budget.snapshot().activeLeases).toBe(0);
  });

  it("books what a stream produced when the stream itself fails, and gives the reservation back", async () => {
    using counter = createTokenCounter({ encoding: "o200k_base" });
    const budget = createBudget({ limits: { generation: 1000 } });
    async function* broken() {
      yield "partial answer";
      throw new Error("socket hang up");
    }
    await expect(budget.meterStream(broken(), { counter })).rejects.toThrow("socket hang up");
    expect(budget.used("generation")).toBe(counter.count("partial answer"));
    expect(budget.snapshot()).toMatchObject({ reserved: { generation: 0 }, activeLeases: 0 });
  });

  it("dollars: prices what it books, and refuses new work once the usd limit is reached", async () => {
    const pricing = { model: "claude-sonnet-4-5" };
    const price = (input: number, output: number) => priceUsage(usage(input, output), pricing).usd;
    const budget = createBudget({ limits: { usd: price(100_000, 10_000) * 1.5 }, pricing });
    const events = collect(budget);
    budget.settle({ lease: budget.reserve({ amounts: { generation: 10_000 } }), spent: usage(100_000, 10_000) });
    expect(budget.used("usd")).toBeCloseTo(price(100_000, 10_000), 10);
    expect(budget.tryReserve({ amounts: { generation: 10 } })).toBeDefined();
    // A stream's local count carries no price; its reconcile books the reported usage's dollars.
    const result = await budget.meterStream(deltas(["more"], { value: false }), {});
    result.reconcile(usage(100_000, 10_000));
    expect(budget.used("usd")).toBeCloseTo(2 * price(100_000, 10_000), 10);
    expect(events).toContainEqual(expect.stringMatching(/^exceeded usd /));
    expect(budget.exhausted).toBe(true);
    expect(() => budget.reserve({ amounts: { generation: 1 } })).toThrow(BudgetExceededError);
    expect(budget.beforeToolCall({ tool: "grep", inputTokens: 1 })).toMatchObject({ allowed: false, reason: "usd" });
    expect(() => createBudget({ limits: { usd: 1 }, pricing: { model: "no-such-model" } })).toThrow(/no-such-model/);
  });

  it("says which check refused what, and at which level", async () => {
    const session = createBudget({ id: "session", limits: { sessionTotal: 100 } });
    const task = createBudget({ id: "task", parent: session, limits: { generation: 50, toolCalls: 10, contextRead: 80 } });
    const refused: string[] = [];
    task.on("budget-refused", ({ budgetId, kind, at, requested, available }) =>
      refused.push(`${at} ${budgetId} ${kind} ${requested}>${available}`),
    );
    expect(() => task.reserve({ amounts: { generation: 60 } })).toThrow(BudgetExceededError);
    expect(task.tryReserve({ amounts: { sessionTotal: 120 } })).toBeUndefined();
    expect(task.beforeToolCall({ tool: "grep", inputTokens: 11 })).toMatchObject({ allowed: false });
    expect(task.checkContext(90)).toMatchObject({ allowed: false, reason: "context-read" });
    using counter = createTokenCounter({ encoding: "o200k_base" });
    const words = Array.from({ length: 80 }, (_, index) => ` word${index}`);
    expect((await task.meterStream(deltas(words, { value: false }), { counter })).stoppedBy).toBe("generation");
    expect(refused).toEqual([
      "reserve task generation 60>50",
      "tryReserve session sessionTotal 120>100",
      "beforeToolCall task toolCalls 11>10",
      "checkContext task contextRead 90>80",
      expect.stringMatching(/^meterStream task generation \d+>\d+$/),
    ]);
  });

  it("expired leases give their reservation back; late spend is still booked", () => {
    let now = 0;
    const budget = createBudget({ limits: { generation: 100 }, leaseTtlMs: 1000, now: () => now });
    const lease = budget.reserve({ amounts: { generation: 80 } });
    now = 999;
    expect(budget.available("generation")).toBe(20);
    now = 1000;
    expect(budget.available("generation")).toBe(100);
    expect(lease.state).toBe("expired");
    budget.settle({ lease, spent: 30 });
    expect(budget.used("generation")).toBe(30);
    expect(() => budget.release(lease)).toThrow(/is settled/);
  });

  it("a stream that outlives its lease books its spend and holds nothing afterwards", async () => {
    let now = 0;
    const budget = createBudget({ limits: { generation: 10_000 }, leaseTtlMs: 1000, now: () => now });
    using counter = createTokenCounter({ encoding: "o200k_base" });
    async function* slow() {
      yield " first words";
      now = 5000; // the lease expires while the stream goes on
      yield " more words after the lease ran out";
    }
    const result = await budget.meterStream(slow(), { counter });
    expect(budget.used("generation")).toBe(result.outputTokens);
    expect(budget.snapshot().reserved.generation).toBe(0);
  });

  it("validates its input with clear errors", () => {
    expect(() => createBudget({ limits: { tokens: 5 } as never })).toThrow('unknown budget kind "tokens"');
    expect(() => createBudget({ limits: { generation: -1 } })).toThrow("limits.generation: must be a non-negative number, got -1");
    const budget = createBudget({ limits: {} });
    expect(() => budget.reserve({ amounts: { generation: Number.NaN } })).toThrow(
      "invalid options.amounts: generation must be a non-negative number, got null",
    );
    expect(() => budget.settle({ lease: { id: "x", budgetId: "other" } as never, spent: 1 })).toThrow('not a lease of budget "budget"');
    expect(() => budget.beforeToolCall({ tool: "", inputTokens: 1 })).toThrow("invalid tool: expected the tool's name");
    // The positional forms of before this API are refused with the shape to use, not misread.
    const lease = budget.reserve({ amounts: { generation: 1 } });
    expect(() => (budget.settle as (...args: unknown[]) => void)(lease, 1)).toThrow(
      "invalid options.spent: expected settle({ lease, spent, model? })",
    );
    expect(() => (budget.reserve as (...args: unknown[]) => void)("generation", 1)).toThrow(
      "invalid options.amounts: expected reserve({ amounts",
    );
    expect(() => (budget.charge as (...args: unknown[]) => void)({ generation: 1 })).toThrow(
      "invalid options.spent: expected charge({ spent, model? })",
    );
    expect(() => (budget.extend as (...args: unknown[]) => void)("generation", 1, { approvedBy: "ana" })).toThrow("invalid options");
    expect(() => budget.settle({ lease, spent: -1 })).toThrow("invalid options.spent: expected a non-negative number, got -1");
    budget.release(lease);
    return budget.meterStream(deltas(["x"], { value: false }), {}).then((result) => {
      expect(() => result.reconcile({ ...usage(1, 1), outputTokens: Number.NaN })).toThrow(
        "invalid usage: outputTokens must be a non-negative number, got NaN",
      );
      expect(() => result.reconcile({ ...usage(1, 1), inputTokens: -5 })).toThrow("inputTokens must be a non-negative number, got -5");
      expect(budget.used("generation")).toBe(1);
    });
  });

  it("8 parallel callers × 1,000 reservations never overshoot a cap at any level", async () => {
    const team = createBudget({ id: "team", limits: { sessionTotal: 300_000 } });
    const task = createBudget({ id: "task", parent: team, limits: { generation: 200_000 } });
    const exceeded: BudgetEvents["budget-exceeded"][] = [];
    team.on("budget-exceeded", (event) => exceeded.push(event));
    let granted = 0;
    let refused = 0;
    const random = (seed: number) => () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const caller = async (index: number) => {
      const next = random(index + 1);
      for (let call = 0; call < 1000; call++) {
        const estimate = 1 + Math.floor(next() * 600);
        const lease = task.tryReserve({ amounts: { generation: estimate } });
        if (!lease) {
          refused++;
          await new Promise((resolve) => setImmediate(resolve));
          continue;
        }
        granted++;
        await new Promise((resolve) => setImmediate(resolve));
        task.settle({ lease, spent: Math.floor(next() * (estimate + 1)) });
        expect(task.used("generation")).toBeLessThanOrEqual(200_000);
        expect(team.used("sessionTotal")).toBeLessThanOrEqual(300_000);
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, index) => caller(index)));
    expect(granted + refused).toBe(8000);
    expect(refused).toBeGreaterThan(0);
    expect(task.used("generation")).toBeLessThanOrEqual(200_000);
    expect(task.used("generation")).toBeGreaterThan(150_000);
    expect(task.reserved("generation")).toBe(0);
    expect(exceeded).toEqual([]);
  });

  it("books a paid call of an unknown model without throwing, and fails closed on a usd limit until the dollars are booked", async () => {
    const ledger = createMemoryLedger();
    const session = createBudget({ id: "session", limits: { usd: 5 }, ledger });
    const task = createBudget({ id: "task", parent: session, limits: { generation: 10_000 }, ledger });
    const unknown: BudgetEvents["price-unknown"][] = [];
    task.on("price-unknown", (event) => unknown.push(event));
    const lease = task.reserve({ amounts: { generation: 100 } });
    // The call was served and paid: settling it must not throw, whatever the model.
    task.settle({ lease, spent: usage(1200, 80), model: "claude-opus-9-9" });
    expect(task.used("sessionTotal")).toBe(1280);
    expect(unknown).toEqual([{ budgetId: "task", model: "claude-opus-9-9", usage: usage(1200, 80) }]);
    expect(session.unpricedModels).toEqual(["claude-opus-9-9"]);
    expect(session.exhausted).toBe(true);
    expect(() => task.reserve({ amounts: { generation: 1 } })).toThrow(
      /^budget "session" booked usage of "claude-opus-9-9" that no price is known for, so its usd limit of \$5\.0000 fails closed/,
    );
    expect(task.beforeToolCall({ tool: "Bash", inputTokens: 10 })).toMatchObject({ allowed: false, reason: "usd" });
    // A known model on the same budget is priced from the catalog.
    const restored = await restoreBudget({ id: "session", limits: { usd: 5 }, ledger });
    expect(restored.unpricedModels).toEqual(["claude-opus-9-9"]);
    session.bookUnpriced(0.25);
    expect(session.used("usd")).toBe(0.25);
    expect(task.tryReserve({ amounts: { generation: 1 } })).toBeDefined();
    expect((await restoreBudget({ id: "session", limits: { usd: 5 }, ledger })).unpricedModels).toEqual([]);
    // A budget without a usd limit only records the unknown model.
    const open = createBudget({ limits: { generation: 1000 } });
    open.charge({ spent: usage(10, 10), model: "mystery" });
    expect(open.tryReserve({ amounts: { generation: 10 } })).toBeDefined();
    expect(open.unpricedModels).toEqual(["mystery"]);
  });

  it("prices a settlement by the call's model when one is given", () => {
    const budget = createBudget({ limits: { usd: 10 } });
    budget.settle({ lease: budget.reserve({ amounts: { generation: 100 } }), spent: usage(1_000_000, 0), model: "claude-sonnet-4-6" });
    expect(budget.used("usd")).toBeCloseTo(3, 12);
  });
});

import { describe, expect, it } from "vitest";
import { z } from "zod";
import { BULKHEAD_ERROR_CODES, BulkheadError } from "./bulkhead-error.js";
import { AbortedError } from "./aborted-error.js";
import { ClaimRefusedError } from "./claim-refused-error.js";
import { InvalidArgumentError } from "./invalid-argument-error.js";
import { InvalidTaskSpecError } from "./invalid-task-spec-error.js";
import { LockTimeoutError } from "./lock-timeout-error.js";
import { PathOutsideRootError } from "./path-outside-root-error.js";
import { ProposalAlreadyDecidedError, ProposalNotFoundError } from "./proposal-errors.js";
import { ScopeLimitError } from "./scope-limit-error.js";
import { StoreUnavailableError } from "./store-unavailable-error.js";
import { TypedEmitter } from "./typed-emitter.js";
import { addUsage, emptyUsage, usageReportSchema, usageSchema } from "./usage.js";
import { validateOptions } from "./validate-options.js";

describe("BulkheadError", () => {
  it("carries a code, data and cause, and serialises to JSON", () => {
    const cause = new Error("disk full");
    const error = new BulkheadError("LOCK_TIMEOUT", "lock held", { cause, data: { path: "/x" } });
    expect(error.cause).toBe(cause);
    expect(JSON.parse(JSON.stringify(error))).toEqual({
      name: "BulkheadError",
      code: "LOCK_TIMEOUT",
      message: "lock held",
      data: { path: "/x" },
    });
    expect(Object.values(BULKHEAD_ERROR_CODES)).toContain(error.code);
  });

  it("is recognised across copies of the package by its Symbol.for marker", () => {
    const foreign = { [Symbol.for("bulkhead.error")]: true, code: "ABORTED" };
    expect(BulkheadError.isInstance(foreign)).toBe(true);
    expect(BulkheadError.isInstance(new Error("plain"))).toBe(false);
    expect(BulkheadError.isInstance(null)).toBe(false);
    expect(BulkheadError.isInstance(new InvalidArgumentError("x", "bad"))).toBe(true);
  });

  it("narrows to the subclass it is called on, here and across copies", () => {
    const invalid = new InvalidArgumentError("x", "bad");
    const timeout = new BulkheadError("LOCK_TIMEOUT", "lock held");
    expect(InvalidArgumentError.isInstance(invalid)).toBe(true);
    expect(InvalidArgumentError.isInstance(timeout)).toBe(false);
    // Across copies by the class's own marker; a name alone (or the base marker alone) is not enough.
    expect(InvalidArgumentError.isInstance({ [Symbol.for("bulkhead.error.InvalidArgumentError")]: true })).toBe(true);
    expect(InvalidArgumentError.isInstance({ [Symbol.for("bulkhead.error")]: true, name: "InvalidArgumentError" })).toBe(false);
    expect(InvalidArgumentError.isInstance({ name: "InvalidArgumentError" })).toBe(false);
    const caught: unknown = invalid;
    // Unconditional: isInstance must both return true and narrow the type (parameter is readable).
    expect(InvalidArgumentError.isInstance(caught) && caught.parameter).toBe("x");
  });

  it("gives each class its own marker, so a subclass never matches a sibling or its parent", () => {
    const classes = [
      AbortedError,
      ClaimRefusedError,
      InvalidArgumentError,
      InvalidTaskSpecError,
      LockTimeoutError,
      PathOutsideRootError,
      ProposalAlreadyDecidedError,
      ProposalNotFoundError,
      ScopeLimitError,
      StoreUnavailableError,
    ];
    const markers = new Set(classes.map((type) => (Object.hasOwn(type, "marker") ? type.marker : undefined)));
    expect(markers.has(undefined)).toBe(false);
    expect(markers.size).toBe(classes.length);
    expect(markers.has(BulkheadError.marker)).toBe(false);
    const aborted = new AbortedError("the test");
    expect(AbortedError.isInstance(aborted)).toBe(true);
    expect(BulkheadError.isInstance(aborted)).toBe(true);
    expect(LockTimeoutError.isInstance(aborted)).toBe(false);
    // The markers are not enumerable: they stay out of the serialised error.
    expect(Object.keys(aborted)).not.toContain(String(AbortedError.marker));
    expect(JSON.parse(JSON.stringify(aborted))).toEqual({
      name: "AbortedError",
      code: "ABORTED",
      message: "the test was canceled",
      data: {},
    });
  });

  it("falls back to instanceof for a subclass that declares no marker of its own", () => {
    class Unmarked extends InvalidArgumentError {}
    expect(Unmarked.isInstance(new InvalidArgumentError("x", "bad"))).toBe(false);
    expect(Unmarked.isInstance(new Unmarked("x", "bad"))).toBe(true);
    expect(InvalidArgumentError.isInstance(new Unmarked("x", "bad"))).toBe(true);
  });

  it("types data per class", () => {
    const error = new LockTimeoutError("/tmp/x.lock", 50, { pid: 1 });
    const timeoutMs: number = error.data.timeoutMs;
    expect(timeoutMs).toBe(50);
    expect(new InvalidArgumentError("options.id", "bad").data.parameter).toBe("options.id");
  });

  it("validateOptions names the parameter, the key and the problem", () => {
    const schema = z.object({ timeoutMs: z.number().int().positive() });
    expect(() => validateOptions(schema, { timeoutMs: -1 }, "options")).toThrow(
      "invalid options: timeoutMs: Too small: expected number to be >0",
    );
    const error = (() => {
      try {
        validateOptions(schema, {}, "options");
      } catch (caught) {
        return caught as InvalidArgumentError;
      }
    })();
    expect(error?.parameter).toBe("options");
    expect(error?.code).toBe("INVALID_ARGUMENT");
  });
});

describe("TypedEmitter", () => {
  it("delivers frozen event objects to typed listeners, once and off", () => {
    class Jobs extends TypedEmitter<{ "job-end": { jobId: string; exitCode: number } }> {
      end(jobId: string, exitCode: number) {
        this.emit("job-end", { jobId, exitCode });
      }
    }
    const jobs = new Jobs();
    const seen: string[] = [];
    const listener = (event: { jobId: string; exitCode: number }) => {
      expect(Object.isFrozen(event)).toBe(true);
      seen.push(`${event.jobId}:${event.exitCode}`);
    };
    jobs.on("job-end", listener).once("job-end", () => seen.push("once"));
    jobs.end("a", 0);
    jobs.off("job-end", listener);
    jobs.end("b", 1);
    expect(seen).toEqual(["a:0", "once"]);
  });
});

describe("Usage", () => {
  it("adds field by field and validates reports", () => {
    const one = { ...emptyUsage(), inputTokens: 10, uncachedInputTokens: 4, cacheReadTokens: 6, outputTokens: 3 };
    expect(addUsage(one, one)).toEqual({ ...emptyUsage(), inputTokens: 20, uncachedInputTokens: 8, cacheReadTokens: 12, outputTokens: 6 });
    expect(usageReportSchema.safeParse({ contextReadTokens: -1 }).success).toBe(false);
  });

  it("emptyUsage is the schema's all-zero usage, a fresh object each call", () => {
    expect(emptyUsage()).toEqual(usageSchema.parse({}));
    expect(emptyUsage()).not.toBe(emptyUsage());
  });
});

import { describe, expect, it } from "vitest";
import { z } from "zod";
import { BULKHEAD_ERROR_CODES, BulkheadError } from "./bulkhead-error.js";
import { InvalidArgumentError } from "./invalid-argument-error.js";
import { TypedEmitter } from "./typed-emitter.js";
import { addUsage, emptyUsage, usageReportSchema } from "./usage.js";
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
    expect(InvalidArgumentError.isInstance({ [Symbol.for("bulkhead.error")]: true, name: "InvalidArgumentError" })).toBe(true);
    expect(InvalidArgumentError.isInstance({ name: "InvalidArgumentError" })).toBe(false);
    const caught: unknown = invalid;
    // Unconditional: isInstance must both return true and narrow the type (parameter is readable).
    expect(InvalidArgumentError.isInstance(caught) && caught.parameter).toBe("x");
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
});

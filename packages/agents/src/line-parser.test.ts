import type { AgentEvent } from "@bulkhead/core";
import { describe, expect, it } from "vitest";
import { asCount, jsonLineParser, MAX_EVENT_LINE_BYTES, oneLine } from "./line-parser.js";

// Each JSON object line becomes one event carrying the object, so the tests see what was parsed.
const parser = () => jsonLineParser((line) => [{ type: "raw", line } as unknown as AgentEvent]);
/** A JSON object line of exactly `length` characters. */
const lineOf = (length: number) => `{"a":"${"x".repeat(length - 8)}"}`;

describe("jsonLineParser", () => {
  it("parses a line of exactly the limit, and drops one over it", () => {
    expect(lineOf(10)).toHaveLength(10);
    expect(parser().push(`${lineOf(MAX_EVENT_LINE_BYTES)}\n`)).toHaveLength(1);
    expect(parser().push(`${lineOf(MAX_EVENT_LINE_BYTES + 1)}\n`)).toEqual([]);
  });

  it("keeps a partial line of exactly the limit across chunks, and skips one over it", () => {
    const atLimit = parser();
    expect(atLimit.push(lineOf(MAX_EVENT_LINE_BYTES))).toEqual([]);
    expect(atLimit.push("\n")).toHaveLength(1);
    const over = parser();
    expect(over.push(lineOf(MAX_EVENT_LINE_BYTES + 1))).toEqual([]);
    expect(over.push('\n{"b":1}\n')).toEqual([{ type: "raw", line: { b: 1 } }]);
  });

  it("is ready for the next stream after end()", () => {
    const reused = parser();
    expect(reused.push('{"a":1}')).toEqual([]);
    expect(reused.end()).toEqual([{ type: "raw", line: { a: 1 } }]);
    expect(reused.push('{"a":2}\n')).toEqual([{ type: "raw", line: { a: 2 } }]);
  });

  it("ignores lines that are not JSON objects", () => {
    expect(parser().push('warning: x\n[1,2]\n{"a":\n{"ok":true}\n')).toEqual([{ type: "raw", line: { ok: true } }]);
  });
});

describe("asCount and oneLine", () => {
  it("asCount takes only non-negative integers", () => {
    expect([asCount(3), asCount(0), asCount(-1), asCount(1.5), asCount("3"), asCount(undefined)]).toEqual([3, 0, 0, 0, 0, 0]);
  });

  it("oneLine cuts at max characters or at the first newline, with an ellipsis", () => {
    expect(oneLine("  short  ")).toBe("short");
    expect(oneLine("x".repeat(100))).toBe("x".repeat(100));
    expect(oneLine("x".repeat(101))).toBe(`${"x".repeat(99)}…`);
    expect(oneLine("first\nsecond")).toBe("first…");
  });
});

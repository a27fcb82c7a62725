import { describe, expect, it } from "vitest";
import { formatUsd } from "./format-usd.js";

describe("formatUsd", () => {
  it("rounds to the cent from a cent up, and never prints a float's tail", () => {
    expect(formatUsd(0.028499999999999998)).toBe("$0.03");
    expect(formatUsd(12.5)).toBe("$12.50");
    expect(formatUsd(0.01)).toBe("$0.01");
    expect(formatUsd(1234.5)).toBe("$1234.50");
    expect(formatUsd(0)).toBe("$0.00");
  });

  it("keeps 4 significant digits under a cent, written out without an exponent", () => {
    expect(formatUsd(0.009999)).toBe("$0.009999");
    expect(formatUsd(0.002849)).toBe("$0.002849");
    expect(formatUsd(0.0000123456)).toBe("$0.00001235");
    expect(formatUsd(0.002)).toBe("$0.002");
    expect(formatUsd(1e-9)).toBe("$0.000000001");
  });

  it("signs a negative amount (a refund or correction) before the dollar", () => {
    expect(formatUsd(-0.5)).toBe("-$0.50");
    expect(formatUsd(-0.002)).toBe("-$0.002");
  });

  it("prints what it cannot price as $?", () => {
    expect(formatUsd(Number.NaN)).toBe("$?");
    expect(formatUsd(Number.POSITIVE_INFINITY)).toBe("$?");
  });
});

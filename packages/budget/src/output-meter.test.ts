// admitText and tokenCeiling, the parts of the output meter the AI SDK middleware uses (the
// gateway's tests cover `admit` over its wire formats).
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { createTokenCounter } from "./create-token-counter.js";
import { OutputMeter, tokenCeiling } from "./output-meter.js";

const counter = createTokenCounter({ encoding: "o200k_base" });
afterAll(() => counter.dispose());

describe("OutputMeter.admitText", () => {
  it("never lets the delivered output pass the allowance, stops within one delta of it, and counts exactly what it let through", () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ minLength: 0, maxLength: 24, unit: "grapheme" }), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 200 }),
        (deltas, allowance) => {
          const meter = new OutputMeter(counter, allowance);
          const delivered: string[] = [];
          let refused: string | undefined;
          for (const delta of deltas) {
            if (!meter.admitText(delta)) {
              refused = delta;
              break;
            }
            delivered.push(delta);
          }
          const tokens = counter.count(delivered.join(""));
          expect(meter.tokens).toBe(tokens);
          expect(tokens).toBeLessThanOrEqual(allowance);
          if (refused !== undefined) expect(tokens + counter.count(refused)).toBeGreaterThan(allowance);
        },
      ),
    );
  });

  it("agrees with admit, delta by delta, when mixed with it", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ maxLength: 16, unit: "grapheme" }), fc.boolean()), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 120 }),
        (deltas, allowance) => {
          const mixed = new OutputMeter(counter, allowance);
          const plain = new OutputMeter(counter, allowance);
          for (const [delta, asText] of deltas) {
            const taken = asText ? mixed.admitText(delta) : mixed.admit(3 * delta.length, () => delta);
            expect(taken).toBe(plain.admit(3 * delta.length, () => delta));
            if (!taken) break;
          }
          expect(mixed.tokens).toBe(plain.tokens);
        },
      ),
    );
  });
});

describe("tokenCeiling", () => {
  it("is never below the text's count", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400, unit: "binary" }), (text) => {
        expect(tokenCeiling(text)).toBeGreaterThanOrEqual(counter.count(text));
      }),
    );
  });
});

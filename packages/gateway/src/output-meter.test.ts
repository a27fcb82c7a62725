import { createTokenCounter, OutputMeter } from "@bulkhead/budget";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { anthropicMessages } from "./wire-anthropic.js";
import { SseParser } from "./sse-parser.js";

const counter = createTokenCounter({ encoding: "o200k_base" });
afterAll(() => counter.dispose());

describe("OutputMeter", () => {
  it("never lets the delivered output pass the allowance, stops within one delta of it, and counts exactly what it let through", () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ minLength: 0, maxLength: 24, unit: "grapheme" }), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 0, max: 80 }),
        (deltas, allowance, slack) => {
          const meter = new OutputMeter(counter, allowance);
          const delivered: string[] = [];
          let refused: string | undefined;
          for (const delta of deltas) {
            // The ceiling a wire format gives: the text's bytes, or more (a whole frame's).
            const textBytes = Buffer.byteLength(delta) + slack;
            if (!meter.admit(textBytes, () => delta)) {
              refused = delta;
              break;
            }
            delivered.push(delta);
          }
          const tokens = counter.count(delivered.join(""));
          expect(meter.tokens).toBe(tokens);
          expect(tokens).toBeLessThanOrEqual(allowance);
          // A refusal means that delta would not have fitted.
          if (refused !== undefined) expect(tokens + counter.count(refused)).toBeGreaterThan(allowance);
        },
      ),
    );
  });

  it("counts pieces as what they add to the text before them (two spaces are one token, not two)", () => {
    const meter = new OutputMeter(counter, 2);
    for (const delta of [" ", " ", ""]) expect(meter.admit(Buffer.byteLength(delta), () => delta)).toBe(true);
    expect(meter.tokens).toBe(counter.count("  "));
  });

  it("decodes nothing while the frames' sizes fit the allowance", () => {
    const meter = new OutputMeter(counter, 1_000_000);
    let decoded = 0;
    for (let index = 0; index < 1_000; index++) expect(meter.admit(200, () => (decoded++, "some text"))).toBe(true);
    expect(decoded).toBe(0);
    expect(meter.tokens).toBe(counter.count("some text".repeat(1_000)));
  });
});

describe("Anthropic delta ceilings", () => {
  const text = fc.string({ maxLength: 30, unit: "binary" });
  const delta = fc.oneof(
    fc.record({ type: fc.constant("text_delta"), text }),
    fc.record({ type: fc.constant("input_json_delta"), partial_json: text }),
    fc.record({ type: fc.constant("thinking_delta"), thinking: text }),
    // Other key orders and extra or repeated fields: the ceiling must hold for what is decoded.
    fc.record({ text, type: fc.constant("text_delta") }),
    fc.record({ type: fc.constant("text_delta"), text, extra: text }),
  );

  it("bound the decoded text's UTF-8 length in every delta shape", () => {
    fc.assert(
      fc.property(delta, fc.nat(9), fc.option(text, { nil: undefined }), (value, index, tail) => {
        const json = JSON.stringify({ type: "content_block_delta", index, delta: value });
        // A repeated key later in the object wins in JSON.parse; it must be inside the ceiling too.
        const data = tail === undefined ? json : `${json.slice(0, -1)},"delta":${JSON.stringify({ type: "text_delta", text: tail })}}`;
        const [frame] = new SseParser().push(Buffer.from(`event: content_block_delta\ndata: ${data}\n\n`));
        const info = anthropicMessages.createStream({} as never).inspect(frame!);
        const decoded = info.text!();
        expect(info.textBytes ?? frame!.raw.length).toBeGreaterThanOrEqual(Buffer.byteLength(decoded));
        expect(info.textBytes ?? frame!.raw.length).toBeLessThanOrEqual(frame!.raw.length);
      }),
    );
  });

  it("are close to the text for the API's own delta shape", () => {
    const raw = `event: content_block_delta\ndata: ${JSON.stringify({ type: "content_block_delta", index: 12, delta: { type: "text_delta", text: "hello" } })}\n\n`;
    const [frame] = new SseParser().push(Buffer.from(raw));
    expect(anthropicMessages.createStream({} as never).inspect(frame!).textBytes).toBe('hello"}}\n\n'.length);
  });
});

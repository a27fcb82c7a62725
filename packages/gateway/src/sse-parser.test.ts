import { sseFields } from "@bulkhead/budget";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hasBytesAt } from "@bulkhead/budget";
import { SseParser } from "./sse-parser.js";

const frameArbitrary = fc.record({
  event: fc.option(fc.stringMatching(/^[a-z_.]{1,20}$/), { nil: undefined }),
  data: fc.string({ maxLength: 40 }).map((text) => text.replace(/[\r\n]/g, " ")),
  crlf: fc.boolean(),
});

describe("SseParser", () => {
  it("yields the same frames, byte for byte, however the stream is chunked", () => {
    fc.assert(
      fc.property(
        fc.array(frameArbitrary, { maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 17 }), { minLength: 1 }),
        (frames, cuts) => {
          const texts = frames.map(({ event, data, crlf }) => {
            const newline = crlf ? "\r\n" : "\n";
            return `${event === undefined ? "" : `event: ${event}${newline}`}data: ${data}${newline}${newline}`;
          });
          const bytes = Buffer.from(texts.join(""));
          const parser = new SseParser();
          const parsed = [];
          for (let offset = 0, index = 0; offset < bytes.length; index++) {
            const size = cuts[index % cuts.length]!;
            parsed.push(...parser.push(bytes.subarray(offset, offset + size)));
            offset += size;
          }
          expect(parser.end()).toBeUndefined();
          expect(parsed.map((frame) => frame.raw.toString())).toEqual(texts);
          expect(parsed.map((frame) => [frame.event, frame.data])).toEqual(frames.map(({ event, data }) => [event, data]));
        },
      ),
    );
  });

  it("joins multi-line data, skips comments, and refuses a frame over its size limit", () => {
    const parser = new SseParser(64);
    expect(parser.push(Buffer.from(": keep-alive\n\nevent: x\ndata: a\ndata: b\n\n")).map((frame) => [frame.event, frame.data])).toEqual([
      [undefined, ""],
      ["x", "a\nb"],
    ]);
    expect(() => parser.push(Buffer.from(`data: ${"y".repeat(100)}`))).toThrow(/over 64 bytes/);
  });

  it("ends a frame only at a blank line, not after a one-character line", () => {
    const frames = new SseParser().push(Buffer.from("data: a\nx\ndata: b\n\n"));
    expect(frames.map((frame) => frame.data)).toEqual(["a\nb"]);
  });

  it("holds a partial frame of exactly its size limit, and refuses one byte more", () => {
    const parser = new SseParser(10);
    expect(parser.push(Buffer.from("data: 1234"))).toEqual([]);
    expect(parser.buffered).toBe(10);
    expect(() => parser.push(Buffer.from("5"))).toThrow("an SSE frame is over 10 bytes");
  });

  it("assembles a large frame that arrives one byte at a time", () => {
    const parser = new SseParser();
    const frame = `data: ${"z".repeat(20_000)}\n\n`;
    let frames = 0;
    for (const byte of Buffer.from(frame)) frames += parser.push(Buffer.of(byte)).length;
    expect(frames).toBe(1);
    expect(parser.buffered).toBe(0);
  });

  it("reads a frame's event from its first line exactly as the whole parse does, whatever its lines", () => {
    const line = fc.oneof(
      fc.stringMatching(/^event: ?[a-z_.é]{0,12}$/),
      fc.stringMatching(/^event$/),
      fc.stringMatching(/^eventx?: [a-z]{0,4}$/),
      fc.stringMatching(/^data: ?[^\r\n]{0,20}$/),
      fc.stringMatching(/^: [a-z ]{0,8}$/),
      fc.stringMatching(/^id: [0-9]{1,3}$/),
    );
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 5 }), fc.boolean(), fc.boolean(), (lines, crlf, eventFirst) => {
        const newline = crlf ? "\r\n" : "\n";
        const text = `${lines.join(newline)}${newline}${newline}`;
        const [frame] = new SseParser().push(Buffer.from(text));
        // Either field may be asked first; both must agree with the whole parse.
        const { event, data } = sseFields(Buffer.from(text));
        if (eventFirst) {
          expect(frame!.event).toBe(event);
          expect(frame!.data).toBe(data);
        } else {
          expect(frame!.data).toBe(data);
          expect(frame!.event).toBe(event);
        }
      }),
    );
  });
});

describe("hasBytesAt", () => {
  it("finds a prefix at an offset, and refuses a mismatch or one that runs past the end", () => {
    const bytes = Buffer.from("event: ping\n");
    expect(hasBytesAt(bytes, 0, Buffer.from("event:"))).toBe(true);
    expect(hasBytesAt(bytes, 7, Buffer.from("ping"))).toBe(true);
    expect(hasBytesAt(bytes, 0, Buffer.from(""))).toBe(true);
    expect(hasBytesAt(bytes, 1, Buffer.from("event:"))).toBe(false);
    expect(hasBytesAt(bytes, 8, Buffer.from("ping\n!"))).toBe(false);
  });
});

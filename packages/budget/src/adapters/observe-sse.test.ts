import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { observeSse, sseEventName, sseFields, type SseDecision, type SseEnd } from "./observe-sse.js";

const frames = [
  'event: message_start\ndata: {"type":"message_start"}\n\n',
  'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"héllo"}}\n\n',
  'event: content_block_delta\r\ndata: {"type":"content_block_delta","delta":{"text":"wörld"}}\r\n\r\n',
  'data: {"choices":[]}\n\n',
  "event: message_stop\ndata: {}\n\n",
];
const wire = Buffer.from(frames.join(""));

/** A response whose body arrives in the given pieces, one read each. */
function response(pieces: readonly Uint8Array[]): Response {
  let index = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (index < pieces.length) controller.enqueue(pieces[index++]!);
      else controller.close();
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}

const split = (bytes: Buffer, cuts: readonly number[]): Buffer[] => {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let from = 0;
  for (const point of [...points, bytes.length]) {
    if (point > from) pieces.push(bytes.subarray(from, point));
    from = point;
  }
  return pieces;
};

function observe(pieces: readonly Uint8Array[], decide: (frame: Buffer, index: number) => SseDecision = () => undefined) {
  const seen: string[] = [];
  const ends: SseEnd[] = [];
  const observed = observeSse(
    response(pieces),
    (frame) => {
      seen.push(frame.toString("utf8"));
      return decide(frame, seen.length - 1);
    },
    (how) => ends.push(how),
  );
  return { observed, seen, ends };
}

describe("observeSse", () => {
  it("passes the bytes through as they came and shows every frame once, however the body is split", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(), { maxLength: 12 }), async (cuts) => {
        const { observed, seen, ends } = observe(split(wire, cuts));
        const bytes = Buffer.from(await observed.arrayBuffer());
        expect(bytes.equals(wire)).toBe(true);
        expect(seen).toEqual(frames);
        expect(ends).toEqual(["done"]);
      }),
    );
  });

  it("ends before the frame a handler refuses, never leaving part of it delivered, and appends its closing", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(), { maxLength: 12 }), fc.integer({ min: 0, max: frames.length - 1 }), async (cuts, stopAt) => {
        const { observed, seen, ends } = observe(split(wire, cuts), (_frame, index) =>
          index === stopAt ? { end: true, append: "event: closing\n\n" } : undefined,
        );
        expect(await observed.text()).toBe(frames.slice(0, stopAt).join("") + "event: closing\n\n");
        expect(seen).toEqual(frames.slice(0, stopAt + 1));
        expect(ends).toEqual(["stopped"]);
      }),
    );
  });

  it.each([
    [
      "getReader",
      async (r: Response) => {
        const reader = r.body!.getReader();
        let text = "";
        for (let next = await reader.read(); !next.done; next = await reader.read()) text += Buffer.from(next.value).toString();
        return text;
      },
    ],
    [
      "for await",
      async (r: Response) => {
        let text = "";
        for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) text += Buffer.from(chunk).toString();
        return text;
      },
    ],
    [
      "a clone, then text()",
      async (r: Response) => {
        const copy = r.clone();
        const [mine, theirs] = await Promise.all([r.text(), copy.text()]);
        expect(theirs).toBe(mine);
        return mine;
      },
    ],
    ["a re-wrapped body (new Response(body))", (r: Response) => new Response(r.body).text()],
    ["pipeThrough", (r: Response) => new Response(r.body!.pipeThrough(new TransformStream())).text()],
    [
      "tee",
      async (r: Response) => {
        const [left, right] = r.body!.tee();
        const [text] = await Promise.all([new Response(left).text(), new Response(right).text()]);
        return text;
      },
    ],
    [
      "a BYOB reader",
      async (r: Response) => {
        const reader = r.body!.getReader({ mode: "byob" });
        const parts: Buffer[] = [];
        for (let next = await reader.read(new Uint8Array(7)); !next.done; next = await reader.read(new Uint8Array(7)))
          parts.push(Buffer.from(next.value));
        return Buffer.concat(parts).toString();
      },
    ],
  ])("is observed whichever way the body is read: %s", async (_name, read) => {
    const { observed, seen, ends } = observe(split(wire, [5, 40, 41, 120]));
    expect(observed.body!.locked).toBe(false);
    expect(await read(observed)).toBe(wire.toString());
    expect(seen).toEqual(frames);
    expect(ends).toEqual(["done"]);
  });

  it("ends once as canceled when the reader cancels or the body is canceled unread", async () => {
    const first = observe([wire.subarray(0, 60), wire.subarray(60)]);
    const reader = first.observed.body!.getReader();
    await reader.read();
    await reader.cancel("enough");
    await reader.cancel("again").catch(() => undefined);
    expect(first.ends).toEqual(["canceled"]);
    const second = observe([wire]);
    await second.observed.body!.cancel("unread");
    expect(second.ends).toEqual(["canceled"]);
    expect(second.seen).toEqual([]);
  });

  it("ends as error when the body breaks off, and rejects the read with its error", async () => {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(Buffer.from(frames[0]!));
        controller.error(new Error("socket hang up"));
      },
    });
    const ends: SseEnd[] = [];
    const observed = observeSse(
      new Response(body),
      () => undefined,
      (how) => ends.push(how),
    );
    await expect(observed.text()).rejects.toThrow("socket hang up");
    expect(ends).toEqual(["error"]);
  });

  it("reads the event name from the first line, and the fields by the SSE rules", () => {
    expect(sseEventName(Buffer.from(frames[1]!))).toBe("content_block_delta");
    expect(sseEventName(Buffer.from(frames[2]!))).toBe("content_block_delta");
    expect(sseEventName(Buffer.from(frames[3]!))).toBeUndefined();
    expect(sseFields(Buffer.from("event:x\r\ndata: a\ndata:b\n: comment\n\n"))).toEqual({ event: "x", data: "a\nb" });
  });

  it("reads every field rule of sseFields: bare names, the last event, one space dropped, other fields ignored", () => {
    const cases: [text: string, event: string | undefined, data: string][] = [
      [": keep-alive\n\n", undefined, ""],
      ["event: x\ndata: a\ndata: b\n\n", "x", "a\nb"],
      ["data: a\nx\ndata: b\n\n", undefined, "a\nb"], // a line of another field, without a colon
      ["event\ndata\n\n", "", ""], // a field named without a colon is empty
      ["event: a\nevent: b\ndata: 1\n\n", "b", "1"],
      ["data:  two spaces\n\n", undefined, " two spaces"],
      ["data:\ndata:\n\n", undefined, "\n"],
      ["id: 7\nretry: 10\ndata: {}\n\n", undefined, "{}"],
      ["eventx: y\ndata: z\r\n\r\n", undefined, "z"],
      ["event: é\r\ndata: ünï\r\n\r\n", "é", "ünï"],
      ["data: no terminator", undefined, "no terminator"],
    ];
    for (const [text, event, data] of cases) expect(sseFields(Buffer.from(text)), text).toEqual({ event, data });
  });

  it("sseFields returns the event and data a frame was written with, whatever its line ends", () => {
    fc.assert(
      fc.property(
        fc.option(fc.stringMatching(/^[a-z_.]{1,20}$/), { nil: undefined }),
        fc.array(
          fc.string({ maxLength: 20 }).map((text) => text.replace(/[\r\n]/g, " ")),
          { minLength: 1, maxLength: 3 },
        ),
        fc.boolean(),
        (event, lines, crlf) => {
          const newline = crlf ? "\r\n" : "\n";
          const text = `${event === undefined ? "" : `event: ${event}${newline}`}${lines.map((line) => `data: ${line}${newline}`).join("")}${newline}`;
          expect(sseFields(Buffer.from(text))).toEqual({ event, data: lines.join("\n") });
        },
      ),
    );
  });
});

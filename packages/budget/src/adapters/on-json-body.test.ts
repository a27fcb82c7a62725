import { describe, expect, it, vi } from "vitest";
import { onJsonBody } from "./on-json-body.js";

const body = { id: "msg_1", usage: { input_tokens: 12, output_tokens: 3 } };
const response = () =>
  new Response(new Blob([JSON.stringify(body)]).stream(), { status: 200, headers: { "content-type": "application/json" } });

describe("onJsonBody", () => {
  it.each([
    ["json", (r: Response) => r.json()],
    ["text", (r: Response) => r.text()],
    ["arrayBuffer", (r: Response) => r.arrayBuffer()],
    ["blob", (r: Response) => r.blob()],
    ["the raw body, read by hand", (r: Response) => new Response(r.body).text()],
    [
      "a for-await over the body",
      async (r: Response) => {
        for await (const _chunk of r.body as unknown as AsyncIterable<Uint8Array>);
      },
    ],
    [
      "a clone, then json",
      async (r: Response) => {
        await r.clone().json();
        await r.json();
      },
    ],
  ])("hands over the parsed body exactly once, however it is read: %s", async (_name, read) => {
    const seen: unknown[] = [];
    const wrapped = onJsonBody(response(), (data) => seen.push(data));
    expect(wrapped.body?.locked).toBe(false);
    await read(wrapped);
    // A raw read is metered from the other branch of a tee, which ends beside the caller's.
    while (seen.length === 0) await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual([body]);
  });

  it("gives the reader the body as it came, and undefined to the meter when it is not JSON", async () => {
    const seen: unknown[] = [];
    const wrapped = onJsonBody(new Response("not json"), (data) => seen.push(data));
    expect(await wrapped.text()).toBe("not json");
    expect(seen).toEqual([undefined]);
  });
});

/** Lets the event loop turn until `done` holds, at most `turns` times (no clock involved). */
async function turnsUntil(done: () => boolean, turns = 1000): Promise<void> {
  for (let turn = 0; turn < turns && !done(); turn++) await new Promise((resolve) => setImmediate(resolve));
}

describe("onJsonBody and a body nobody reads", () => {
  it("reads an unread body from a clone in the background, and the caller can still read it later", async () => {
    const seen: unknown[] = [];
    const wrapped = onJsonBody(response(), (data) => seen.push(data));
    await turnsUntil(() => seen.length > 0);
    expect(seen).toEqual([body]);
    expect(await wrapped.json()).toEqual(body);
    expect(seen).toEqual([body]);
  });

  it("never clones a body its reader begins to read in the same turn", async () => {
    const clone = vi.spyOn(Response.prototype, "clone");
    try {
      const seen: unknown[] = [];
      const wrapped = onJsonBody(response(), (data) => seen.push(data));
      await Promise.resolve();
      expect(await wrapped.json()).toEqual(body);
      await turnsUntil(() => false, 5);
      expect(seen).toEqual([body]);
      expect(clone).not.toHaveBeenCalled();
    } finally {
      clone.mockRestore();
    }
  });
});

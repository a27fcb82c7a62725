// Internal: the usage of a non-streamed response, read from the body as the SDK itself reads it.

import { readIfUnread } from "./read-if-unread.js";

const BODY_READERS = ["json", "text", "arrayBuffer", "blob"] as const;
const STREAM_CONSUMERS = ["getReader", "tee", "pipeTo", "pipeThrough", "values", Symbol.asyncIterator] as const;

const parse = (text: string): unknown => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
};

/**
 * Calls `onBody` once with `response`'s parsed JSON body (undefined when it is not JSON or broke
 * off) when the body is read, and returns the same response. The SDKs read it with `json()`:
 * the adapter takes the data from that one read, where `response.clone()` would tee the body
 * and read it twice (most of an adapter's cost per call). A body read any other way (`text()`,
 * `asResponse().body`, a clone) is teed then, and read once more for the usage. A body that no
 * one has begun to read by the next turn of the event loop (an `asResponse()` kept for later, or
 * dropped) is read from a clone in the background, so a paid call is booked whether or not its
 * caller reads it; the caller's body stays readable (the clone's tee holds its bytes).
 */
export function onJsonBody(response: Response, onBody: (data: unknown) => void): Response {
  let delivered = false;
  const deliver = (data: unknown) => {
    if (delivered) return;
    delivered = true;
    onBody(data);
  };
  // Set once one of the readers below reads the body: the stream methods then pass through.
  let reading = false;
  const instance = response as unknown as Record<string, unknown>;
  for (const name of BODY_READERS) {
    const read = Response.prototype[name] as (this: Response) => Promise<unknown>;
    instance[name] = async function (this: Response) {
      reading = true;
      let value: unknown;
      try {
        value = await read.call(response);
      } catch (error) {
        deliver(undefined);
        throw error;
      }
      if (name === "json") deliver(value);
      else if (name === "text") deliver(parse(value as string));
      else if (name === "arrayBuffer") deliver(parse(new TextDecoder().decode(value as ArrayBuffer)));
      else deliver(parse(await (value as Blob).text()));
      return value;
    };
  }
  const stream = response.body;
  if (stream) {
    const own = stream as unknown as Record<string | symbol, unknown>;
    for (const name of STREAM_CONSUMERS) {
      const method = ReadableStream.prototype[name as keyof ReadableStream] as (...args: unknown[]) => unknown;
      own[name] = function (this: ReadableStream, ...args: unknown[]) {
        if (reading || delivered) return method.apply(stream, args);
        reading = true;
        // Read raw: one branch goes to the caller, the other is read here for the usage.
        const [mine, theirs] = ReadableStream.prototype.tee.call(stream) as [ReadableStream<Uint8Array>, ReadableStream<Uint8Array>];
        void new Response(mine).text().then(
          (text) => deliver(parse(text)),
          () => deliver(undefined),
        );
        return method.apply(theirs, args);
      };
    }
  }
  readIfUnread(
    response,
    () => reading || delivered,
    (copy) => {
      reading = true;
      void copy.text().then(
        (text) => deliver(parse(text)),
        () => deliver(undefined),
      );
    },
  );
  return response;
}

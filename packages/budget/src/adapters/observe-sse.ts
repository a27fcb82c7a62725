// Internal: watches a server-sent-events body as the SDK itself reads it, for the adapters that
// meter a stream on the wire (Anthropic, OpenAI). The SDK keeps the response and the stream it
// got; their readers are wrapped, so the bytes pass through as they came (no second stream, no
// re-encoding) while each complete frame is shown to the meter.

import { readIfUnread } from "./read-if-unread.js";

/** What a frame handler decides: pass the frame on, or end the stream before it with `append` (raw SSE). */
export type SseDecision = undefined | { end: true; append?: string };

/** How an observed SSE body ended. */
export type SseEnd = "done" | "stopped" | "canceled" | "error";

/** The largest frame accepted; a bigger one is not an API's event, and holding it is unbounded. */
const MAX_FRAME_BYTES = 16 * 1024 * 1024;
const LF = 0x0a;
const CR = 0x0d;

const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** Whether `bytes` holds `expected` at `offset`: a plain loop, cheaper than `Buffer#compare` for a short prefix. */
export function hasBytesAt(bytes: Buffer, offset: number, expected: Buffer): boolean {
  if (offset + expected.length > bytes.length) return false;
  for (let index = 0; index < expected.length; index++) if (bytes[offset + index] !== expected[index]) return false;
  return true;
}

/** How every delta of the Anthropic API begins, up to its text's first byte (index digits aside). */
const DELTA_HEAD = Buffer.from('event: content_block_delta\ndata: {"type":"content_block_delta","index":');
const DELTA_TEXT_KEYS = [
  Buffer.from(',"delta":{"type":"text_delta","text":"'),
  Buffer.from(',"delta":{"type":"thinking_delta","thinking":"'),
  Buffer.from(',"delta":{"type":"input_json_delta","partial_json":"'),
];

/**
 * A ceiling of an Anthropic `content_block_delta` frame's text length (text, thinking or tool
 * input) without decoding it: in a delta of the API's own shape no string but the two type
 * names comes before the text, so the text lies in the bytes after that head (whatever else the
 * frame holds, later keys included). Otherwise the frame's size (JSON escapes only lengthen a
 * text). The budget's Anthropic meter and the gateway both bound a delta with it.
 */
export function anthropicDeltaTextBytes(frame: Buffer): number {
  if (!hasBytesAt(frame, 0, DELTA_HEAD)) return frame.length;
  let index = DELTA_HEAD.length;
  while (index < frame.length && frame[index]! >= 0x30 && frame[index]! <= 0x39) index++;
  for (const keys of DELTA_TEXT_KEYS) if (hasBytesAt(frame, index, keys)) return frame.length - index - keys.length;
  return frame.length;
}

const EVENT_FIELD = Buffer.from("event:");

/**
 * A frame's `event:` name when it comes first (as both APIs send it), read from the first line
 * without decoding the rest; undefined when the frame starts otherwise (then read {@link sseFields}).
 */
export function sseEventName(frame: Buffer): string | undefined {
  if (!hasBytesAt(frame, 0, EVENT_FIELD)) return undefined;
  let end = frame.indexOf(LF);
  if (end === -1) end = frame.length;
  if (frame[end - 1] === CR) end--;
  const start = frame[EVENT_FIELD.length] === 0x20 ? EVENT_FIELD.length + 1 : EVENT_FIELD.length;
  return frame.toString("latin1", start, end);
}

/**
 * One server-sent-events frame's `event:` and `data:` by the field rules of the HTML standard,
 * every line read: CRLF or LF line ends, comment lines (`:`) skipped, one space after the colon
 * dropped, a field named without a colon taken as empty, the last `event:` kept, `data:` lines
 * joined with "\n" (`""` when there are none), other fields (`id:`, `retry:`) ignored. The one
 * field parser of bulkhead: the meters here read the few frames they parse with it, and the
 * gateway reads a frame with it when it needs more than the event name of the first line.
 *
 * @example
 * sseFields(Buffer.from("event: ping\ndata: {}\n\n")); // { event: "ping", data: "{}" }
 */
export function sseFields(frame: Buffer): { event: string | undefined; data: string } {
  let event: string | undefined;
  let data: string | undefined;
  for (let line of frame.toString("utf8").split("\n")) {
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data = data === undefined ? value : `${data}\n${value}`;
  }
  return { event, data: data ?? "" };
}

const DATA_FIELD = Buffer.from("data: ");

/** A frame's data, read straight from its bytes in the common shape (an optional `event:` line, then one `data: ` line). */
function sseData(frame: Buffer): string {
  const lf = hasBytesAt(frame, 0, EVENT_FIELD) ? frame.indexOf(LF) : -1;
  const start = lf + 1;
  if (start > 0 || hasBytesAt(frame, 0, DATA_FIELD)) {
    if (hasBytesAt(frame, start, DATA_FIELD)) {
      let end = frame.indexOf(LF, start);
      if (end !== -1 && (end === frame.length - 1 || frame[end + 1] === LF || (frame[end + 1] === CR && end + 2 === frame.length - 1))) {
        if (frame[end - 1] === CR) end--;
        return frame.toString("utf8", start + DATA_FIELD.length, end);
      }
    }
  }
  return sseFields(frame).data;
}

/** A frame's data parsed as a JSON object, or undefined. */
export function sseJson(frame: Buffer): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(sseData(frame)) as unknown;
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

type ReadResult = Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>["read"]>>;
type Reader = ReadableStreamDefaultReader<Uint8Array>;

/**
 * Returns `response` itself, its body's readers wrapped: whoever reads the body (the SDK's
 * `for await`, `getReader()`, `text()`, a clone, `pipeTo`) gets its bytes as they came, and
 * `onFrame` sees every complete frame (`\n\n` or `\r\n\r\n` ended, terminator included) first.
 * A frame still incomplete at the end of a read is held until it completes, so a handler that
 * ends the stream never leaves half a frame delivered. `onEnd` is called exactly once: the body
 * ended, a handler ended it, the reader canceled it, or it failed. Each byte is scanned once;
 * a frame is copied only when it spans reads. A body no one has begun to read by the next turn of
 * the event loop is read in the background (see below).
 */
export function observeSse(response: Response, onFrame: (frame: Buffer) => SseDecision, onEnd: (how: SseEnd) => void): Response {
  const stream = response.body;
  if (!stream) return response;
  const getReader = ReadableStream.prototype.getReader;
  const cancelStream = ReadableStream.prototype.cancel;
  let inner: Reader | undefined;
  /** The reader handed out and not released: at most one, as the stream's own lock allows. */
  let holder: object | undefined;
  const queue: Uint8Array[] = [];
  let finished = false;
  let ended = false;
  const end = (how: SseEnd) => {
    if (ended) return;
    ended = true;
    onEnd(how);
  };

  // The frame in progress: its bytes from earlier reads, and where its end is in the scan.
  let parts: Buffer[] = [];
  let partBytes = 0;
  /** 0: inside a line; 1: just after LF; 2: after LF CR. A second LF (after either) ends the frame. */
  let state = 0;

  /** Scans one read's bytes; queues what may pass; true when a handler ended the stream. */
  const scan = (value: Uint8Array): boolean => {
    const chunk = asBuffer(value);
    let start = 0; // where the frame in progress begins in this chunk
    let run = 0; // where the bytes not queued yet begin
    let index = 0;
    while (index < chunk.length) {
      if (state === 0) {
        // Native search to the next line end: most bytes are never looked at one by one.
        const lf = chunk.indexOf(LF, index);
        if (lf === -1) break;
        state = 1;
        index = lf + 1;
        continue;
      }
      const byte = chunk[index];
      if (byte !== LF) {
        state = byte === CR && state === 1 ? 2 : 0;
        index++;
        continue;
      }
      const frameEnd = index + 1;
      const joined = parts.length > 0;
      const frame = joined
        ? Buffer.concat([...parts, chunk.subarray(start, frameEnd)], partBytes + frameEnd - start)
        : chunk.subarray(start, frameEnd);
      parts = [];
      partBytes = 0;
      state = 0;
      const decision = onFrame(frame);
      if (decision?.end) {
        if (start > run) queue.push(chunk.subarray(run, start));
        if (decision.append) queue.push(Buffer.from(decision.append));
        return true;
      }
      if (joined) {
        queue.push(frame);
        run = frameEnd;
      }
      start = frameEnd;
      index = frameEnd;
    }
    if (run === 0 && start === chunk.length) queue.push(value);
    else if (start > run) queue.push(chunk.subarray(run, start));
    if (start < chunk.length) {
      parts.push(chunk.subarray(start));
      partBytes += chunk.length - start;
      if (partBytes > MAX_FRAME_BYTES) throw new Error(`an SSE frame is over ${MAX_FRAME_BYTES} bytes`);
    }
    return false;
  };

  /** The body ended: a last frame without its terminator is shown and passed on as it is. */
  const scanRest = () => {
    if (parts.length === 0) return;
    const rest = Buffer.concat(parts, partBytes);
    parts = [];
    partBytes = 0;
    const decision = rest.toString("utf8").trim() === "" ? undefined : onFrame(rest);
    if (decision?.end) {
      if (decision.append) queue.push(Buffer.from(decision.append));
    } else queue.push(rest);
  };

  const DONE: ReadResult = { done: true, value: undefined };
  // Plain promise chains rather than async functions: a read is a few microtasks fewer per chunk.
  const read = (): Promise<ReadResult> => {
    const next = queue.shift();
    if (next) return Promise.resolve({ done: false, value: next });
    if (finished) return Promise.resolve(DONE);
    return inner!.read().then(received, failed);
  };
  const failed = (error: unknown): never => {
    finished = true;
    end("error");
    throw error;
  };
  const received = (result: ReadResult): Promise<ReadResult> => {
    if (result.done) {
      finished = true;
      scanRest();
      end("done");
      return read();
    }
    let stopped: boolean;
    try {
      stopped = scan(result.value);
    } catch (error) {
      finished = true;
      queue.length = 0;
      end("error");
      return inner!.cancel(error).then(
        () => Promise.reject(error as Error),
        () => Promise.reject(error as Error),
      );
    }
    if (stopped) {
      finished = true;
      end("stopped");
      void inner!.cancel("stopped by the budget").catch(() => undefined);
    }
    return read();
  };

  const cancel = async (reason: unknown) => {
    const wasFinished = finished;
    finished = true;
    queue.length = 0;
    end("canceled");
    if (!wasFinished) await inner!.cancel(reason);
  };

  /** A reader of the observed bytes, with the default reader's contract (one at a time). */
  const reader = (): Reader => {
    if (holder) throw new TypeError("ReadableStream is locked: release the reader that holds it first");
    const acquired = (inner ??= getReader.call(stream) as Reader);
    const own: Reader = {
      read: () => (holder === own ? read() : Promise.reject(new TypeError("the reader was released"))),
      releaseLock: () => {
        if (holder === own) holder = undefined;
      },
      cancel: (reason?: unknown) => (holder === own ? cancel(reason) : Promise.reject(new TypeError("the reader was released"))),
      closed: acquired.closed,
    };
    holder = own;
    return own;
  };

  /**
   * For the consumers that need a real stream (tee, pipes, a clone, a BYOB reader): one that
   * reads the observed bytes. A byte stream takes its chunks' buffers over, so it gets copies.
   */
  const asStream = (bytes = false): ReadableStream<Uint8Array> => {
    const source = reader();
    const underlying = {
      async pull(controller: ReadableStreamDefaultController<Uint8Array>) {
        const next = await source.read();
        if (next.done) {
          controller.close();
          // A BYOB read waiting on a closed byte stream is answered with an empty view.
          (controller as { byobRequest?: { respond(bytes: number): void } | null }).byobRequest?.respond(0);
        } else controller.enqueue(bytes ? new Uint8Array(next.value) : next.value);
      },
      cancel: (reason: unknown) => source.cancel(reason),
    };
    return bytes
      ? new ReadableStream({ ...underlying, type: "bytes" } as never, { highWaterMark: 0 })
      : new ReadableStream<Uint8Array>(underlying, { highWaterMark: 0 });
  };

  function iterate(options?: { preventCancel?: boolean }): AsyncIterableIterator<Uint8Array> {
    const source = reader();
    return {
      next: () =>
        source.read().then(
          (result) => {
            if (result.done) source.releaseLock();
            return result;
          },
          (error: unknown) => {
            source.releaseLock();
            throw error;
          },
        ),
      async return(value?: unknown) {
        if (!options?.preventCancel) await source.cancel(value).catch(() => undefined);
        source.releaseLock();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  const own = stream as unknown as Record<string | symbol, unknown>;
  own.getReader = function (options?: { mode?: "byob" }) {
    return options?.mode === "byob" ? getReader.call(asStream(true), options) : reader();
  };
  own.values = iterate;
  own[Symbol.asyncIterator] = iterate;
  for (const name of ["tee", "pipeTo", "pipeThrough"] as const) {
    const method = ReadableStream.prototype[name] as (...args: unknown[]) => unknown;
    own[name] = (...args: unknown[]) => method.apply(asStream(), args);
  }
  own.cancel = function (reason?: unknown) {
    if (holder) return cancelStream.call(stream, reason); // rejects: the stream is locked
    if (!inner) {
      finished = true;
      end("canceled");
      return cancelStream.call(stream, reason);
    }
    return cancel(reason);
  };
  // Not read by the next turn: the clone is drained, and this stream's observer meters it.
  readIfUnread(
    response,
    () => inner !== undefined || finished,
    (copy) => void copy.body?.pipeTo(new WritableStream()).catch(() => undefined),
  );
  return response;
}

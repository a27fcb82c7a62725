import { hasBytesAt, sseFields } from "@bulkhead/budget";

/** One server-sent event as it came off the wire: its bytes, its `event:` name and its `data:`. */
export interface SseFrame {
  /** The frame's exact bytes, its blank-line terminator included, for pass-through. */
  readonly raw: Buffer;
  /** The `event:` field, or undefined (OpenAI Chat Completions sends none). */
  readonly event: string | undefined;
  /** The `data:` lines joined with "\n", or "" when there are none. */
  readonly data: string;
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * An incremental SSE parser: `push` a chunk, get back the frames it completed. Each byte is
 * scanned once and copied at most once (a frame's pieces are joined when it completes), so a
 * stream costs linear time whatever its chunking. Accepts `\n\n`, `\r\n\r\n` and mixed terminators.
 */
export class SseParser {
  /** Bytes of the frame in progress, as received (copied once, when the frame completes). */
  #parts: Buffer[] = [];
  #size = 0;
  /** 0: inside a line; 1: just after LF; 2: after LF CR. A second LF (after either) ends the frame. */
  #state = 0;
  readonly #maxFrameBytes: number;

  /** @param maxFrameBytes a frame longer than this throws: an upstream that never ends a frame cannot make the gateway buffer without bound. */
  constructor(maxFrameBytes = 16 * 1024 * 1024) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Bytes received but not yet part of a complete frame. */
  get buffered(): number {
    return this.#size;
  }

  push(chunk: Buffer): SseFrame[] {
    const frames: SseFrame[] = [];
    let start = 0;
    let index = 0;
    while (index < chunk.length) {
      if (this.#state === 0) {
        // Native search to the next line end: most bytes are never looked at one by one.
        const lf = chunk.indexOf(LF, index);
        if (lf === -1) break;
        this.#state = 1;
        index = lf + 1;
        continue;
      }
      const byte = chunk[index];
      if (byte === LF) {
        const end = index + 1;
        frames.push(parseFrame(this.#take(chunk.subarray(start, end))));
        start = end;
        index = end;
        this.#state = 0;
      } else {
        this.#state = byte === CR && this.#state === 1 ? 2 : 0;
        index++;
      }
    }
    if (start < chunk.length) {
      this.#parts.push(chunk.subarray(start));
      this.#size += chunk.length - start;
      if (this.#size > this.#maxFrameBytes) throw new Error(`an SSE frame is over ${this.#maxFrameBytes} bytes`);
    }
    return frames;
  }

  /** What is left when the stream ends: a last frame without its terminator, if any. */
  end(): SseFrame | undefined {
    const rest = this.#take(Buffer.alloc(0));
    this.#state = 0;
    if (rest.toString("utf8").trim() === "") return undefined;
    return parseFrame(rest);
  }

  #take(tail: Buffer): Buffer {
    if (this.#parts.length === 0) return tail;
    const whole = Buffer.concat([...this.#parts, tail], this.#size + tail.length);
    this.#parts = [];
    this.#size = 0;
    return whole;
  }
}

const EVENT_FIELD = Buffer.from("event:");
const EVENT_LINE = Buffer.from("\nevent");

/**
 * A frame whose fields are read only when asked: most frames of a stream are passed on as their
 * bytes, and the gateway needs at most their `event:` name, which is read from the first line
 * without decoding the rest.
 */
class LazyFrame implements SseFrame {
  readonly raw: Buffer;
  #event: string | undefined;
  #data: string | undefined;
  #state = 0; // 0: nothing read; 1: the event read; 2: every field read

  constructor(raw: Buffer) {
    this.raw = raw;
  }

  get event(): string | undefined {
    if (this.#state === 0) this.#readEvent();
    return this.#event;
  }

  get data(): string {
    if (this.#state !== 2) this.#parse();
    return this.#data!;
  }

  #readEvent(): void {
    const raw = this.raw;
    // The common shape: `event: name` first and no other event line. Anything else is parsed whole.
    if (hasBytesAt(raw, 0, EVENT_FIELD)) {
      const lf = raw.indexOf(LF);
      if (raw.indexOf(EVENT_LINE, lf) !== -1) return this.#parse();
      let end = lf;
      if (raw[end - 1] === CR) end--;
      const start = raw[EVENT_FIELD.length] === 0x20 ? EVENT_FIELD.length + 1 : EVENT_FIELD.length;
      this.#event = raw.toString("utf8", start, end);
      this.#state = 1;
      return;
    }
    if (raw[0] === 0x65 /* e: a field "event" without a colon */ || raw.indexOf(EVENT_LINE) !== -1) return this.#parse();
    this.#event = undefined;
    this.#state = 1;
  }

  #parse(): void {
    // The slow path: budget's field parser, the one implementation (its tests hold the SSE rules).
    ({ event: this.#event, data: this.#data } = sseFields(this.raw));
    this.#state = 2;
  }
}

const parseFrame = (raw: Buffer): SseFrame => new LazyFrame(raw);

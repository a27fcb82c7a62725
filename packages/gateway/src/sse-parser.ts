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
 * scanned once (the search resumes where the last one stopped), so a stream costs linear time
 * whatever its chunking. Accepts `\n\n`, `\r\n\r\n` and mixed terminators.
 */
export class SseParser {
  #pending: Buffer = Buffer.alloc(0);
  /** Where the search for the next terminator resumes inside `#pending`. */
  #scanFrom = 0;
  readonly #maxFrameBytes: number;

  /** @param maxFrameBytes a frame longer than this throws: an upstream that never ends a frame cannot make the gateway buffer without bound. */
  constructor(maxFrameBytes = 16 * 1024 * 1024) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Bytes received but not yet part of a complete frame. */
  get buffered(): number {
    return this.#pending.length;
  }

  push(chunk: Buffer): SseFrame[] {
    const buffer = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const frames: SseFrame[] = [];
    let start = 0;
    let index = Math.max(this.#scanFrom, 0);
    for (; index < buffer.length; index++) {
      if (buffer[index] !== LF) continue;
      // A frame ends at an empty line: LF LF, or LF CR LF.
      const next = buffer[index + 1];
      let end = -1;
      if (next === LF) end = index + 2;
      else if (next === CR && buffer[index + 2] === LF) end = index + 3;
      if (end === -1) continue;
      frames.push(parseFrame(buffer.subarray(start, end)));
      start = end;
      index = end - 1;
    }
    this.#pending = start === 0 ? buffer : buffer.subarray(start);
    // The last byte or two may begin a terminator: look at them again with the next chunk.
    this.#scanFrom = Math.max(0, this.#pending.length - 2);
    if (this.#pending.length > this.#maxFrameBytes) throw new Error(`an SSE frame is over ${this.#maxFrameBytes} bytes`);
    return frames;
  }

  /** What is left when the stream ends: a last frame without its terminator, if any. */
  end(): SseFrame | undefined {
    const rest = this.#pending;
    this.#pending = Buffer.alloc(0);
    this.#scanFrom = 0;
    if (rest.toString("utf8").trim() === "") return undefined;
    return parseFrame(rest);
  }
}

function parseFrame(raw: Buffer): SseFrame {
  let event: string | undefined;
  let data: string | undefined;
  for (let line of raw.toString("utf8").split("\n")) {
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data = data === undefined ? value : `${data}\n${value}`;
  }
  return { raw, event, data: data ?? "" };
}

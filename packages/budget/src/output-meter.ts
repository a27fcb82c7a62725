// The lazy output count of a metered stream: the stream adapters here and the model gateway
// (which imports it from this package) both use it.

/** What the meter counts with: a counter whose counts are ready now. */
export interface SyncCounter {
  count(text: string): number;
}

/**
 * A safe ceiling of a text's tokens from its UTF-8 length: an o200k_base token is at least one
 * byte, and a Claude estimate multiplies by at most ~1.5 (then rounds up).
 */
const bound = (bytes: number) => 2 * bytes + 1;

/**
 * A ceiling of a text's tokens without tokenizing it (see `bound`), for a reservation that must
 * never be lower than what the text could count as. Internal: the AI SDK middleware reserves a
 * prompt with it while the budget has room, and tokenizes only near the limit.
 */
export const tokenCeiling = (text: string): number => bound(Buffer.byteLength(text));

/** Deltas held undecoded at most this many frame bytes; past it they are counted, so memory stays bounded. */
const MAX_PENDING_BYTES = 8 * 1024 * 1024;

/**
 * How much of the delivered text a later count is taken with. Token counts do not add up ("a" and
 * "b" may be one token together): a piece is counted as what it adds to the text before it, and
 * the tokenizer's pre-split pieces (words, runs of spaces or digits) are far shorter than this.
 */
const TAIL_CHARS = 256;

/**
 * Counts a stream's delivered output against an allowance, decoding and tokenizing as little as
 * it can. Each delta comes with a ceiling of its text's UTF-8 length that needs no decoding (at
 * worst the size of its frame: JSON escapes only lengthen); while the ceilings of everything
 * delivered fit, deltas are only remembered. Closer to the allowance the deltas held are decoded
 * for tighter ceilings, and at the edge each is counted exactly before it is let through. The
 * count itself is needed only when the stream is cut (a complete stream is booked from the
 * upstream's usage).
 */
export class OutputMeter {
  readonly #counter: SyncCounter;
  readonly #allowance: number;
  /** Exact tokens of the deltas already counted. */
  #counted = 0;
  /** Deltas delivered but not counted yet: decoded texts first (up to `#decoded`), then ones held by a loose ceiling (a decode function, or a text from `admitText`). */
  #pending: (string | (() => string))[] = [];
  #decoded = 0;
  /** Token ceilings of the decoded and the undecoded pending deltas. */
  #decodedBound = 0;
  #lazyBound = 0;
  /** Bytes the pending deltas hold (undecoded ones by their ceiling), to bound memory. */
  #lazyBytes = 0;
  #decodedBytes = 0;
  /** The last characters of the text counted so far. */
  #tail = "";

  /** @param allowance the output a stream may deliver, in tokens (Infinity: unbounded, only counted) */
  constructor(counter: SyncCounter, allowance: number) {
    this.#counter = counter;
    this.#allowance = allowance;
  }

  /**
   * Takes a delta if it fits in the allowance (then it counts as delivered), or refuses it.
   * @param textBytes a ceiling of the text's UTF-8 length, known without decoding it (the frame's size will do)
   * @param decode the delta's text, called only when that ceiling does not fit
   */
  admit(textBytes: number, decode: () => string): boolean {
    if (bound(textBytes) <= this.#room()) {
      this.#hold(decode, textBytes);
      return true;
    }
    this.#tighten();
    const text = decode();
    const ceiling = bound(Buffer.byteLength(text));
    if (ceiling <= this.#room()) {
      this.#pending.push(text);
      this.#decoded++;
      this.#decodedBound += ceiling;
      this.#decodedBytes += text.length;
      return true;
    }
    this.#flush();
    const added = this.#added(text);
    if (this.#counted + added.tokens > this.#allowance) return false;
    this.#counted += added.tokens;
    this.#tail = added.tail;
    return true;
  }

  /**
   * {@link admit} for a delta whose text is at hand (no decoding to defer): the same check,
   * without a closure per delta.
   */
  admitText(text: string): boolean {
    // A UTF-16 unit is at most 3 UTF-8 bytes: a ceiling of the text's bytes without encoding it.
    const textBytes = 3 * text.length;
    if (bound(textBytes) <= this.#room()) {
      this.#hold(text, textBytes);
      return true;
    }
    return this.admit(textBytes, () => text);
  }

  /** Keeps a delta that fits by its ceiling, to be counted later (or never); counts what is held once it grows too large. */
  #hold(delta: string | (() => string), textBytes: number): void {
    this.#pending.push(delta);
    this.#lazyBound += bound(textBytes);
    this.#lazyBytes += textBytes;
    if (this.#lazyBytes + this.#decodedBytes > MAX_PENDING_BYTES) this.#flush();
  }

  /** The tokens `text` adds after what was counted so far, and the tail the text then ends with. */
  #added(text: string): { tokens: number; tail: string } {
    if (text === "") return { tokens: 0, tail: this.#tail };
    const joined = this.#tail + text;
    const tokens = this.#counter.count(joined) - (this.#tail === "" ? 0 : this.#counter.count(this.#tail));
    let tail = joined.slice(-TAIL_CHARS);
    // Never start the tail inside a surrogate pair: half a character would count differently.
    const first = tail.charCodeAt(0);
    if (first >= 0xdc00 && first <= 0xdfff) tail = tail.slice(1);
    return { tokens, tail };
  }

  /** Tokens delivered so far. */
  get tokens(): number {
    this.#flush();
    return this.#counted;
  }

  #room(): number {
    return this.#allowance - this.#counted - this.#decodedBound - this.#lazyBound;
  }

  /** Decodes the deltas held undecoded, so that their ceilings come from their texts. Each is decoded once. */
  #tighten(): void {
    for (; this.#decoded < this.#pending.length; this.#decoded++) {
      const piece = this.#pending[this.#decoded]!;
      const text = typeof piece === "string" ? piece : piece();
      this.#pending[this.#decoded] = text;
      this.#decodedBound += bound(Buffer.byteLength(text));
      this.#decodedBytes += text.length;
    }
    this.#lazyBound = 0;
    this.#lazyBytes = 0;
  }

  #flush(): void {
    if (this.#pending.length === 0) return;
    const added = this.#added(this.#pending.map((piece) => (typeof piece === "string" ? piece : piece())).join(""));
    this.#counted += added.tokens;
    this.#tail = added.tail;
    this.#pending = [];
    this.#decoded = 0;
    this.#decodedBound = 0;
    this.#lazyBound = 0;
    this.#decodedBytes = 0;
    this.#lazyBytes = 0;
  }
}

import type { BudgetTokenCounter } from "@bulkhead/budget";

/**
 * A safe ceiling of a delta's tokens without tokenizing it: an o200k_base token is at least one
 * byte, and a Claude estimate multiplies by at most ~1.5 (then rounds up).
 */
const bound = (text: string) => 2 * Buffer.byteLength(text) + 1;

/**
 * Counts a stream's delivered output against an allowance, tokenizing as little as it can:
 * while the byte-based ceiling of everything delivered fits, deltas are only remembered; near
 * the allowance each delta is counted exactly before it is let through. The count is needed
 * only when the stream is cut (a complete stream is booked from the upstream's usage).
 */
export class OutputMeter {
  readonly #counter: BudgetTokenCounter;
  readonly #allowance: number;
  /** Exact tokens of the deltas already counted. */
  #counted = 0;
  /** Deltas delivered but not counted yet, and their ceiling. */
  #pending: (string | (() => string))[] = [];
  #pendingBound = 0;

  constructor(counter: BudgetTokenCounter, allowance: number) {
    this.#counter = counter;
    this.#allowance = allowance;
  }

  /** Takes a delta if it fits in the allowance (then it counts as delivered), or refuses it. */
  admit(text: string): boolean {
    const ceiling = bound(text);
    if (this.#counted + this.#pendingBound + ceiling <= this.#allowance) {
      this.#pending.push(text);
      this.#pendingBound += ceiling;
      return true;
    }
    this.#flush();
    const tokens = this.#counter.count(text);
    if (this.#counted + tokens > this.#allowance) return false;
    this.#counted += tokens;
    return true;
  }

  /** Records a delta on a stream without an allowance: decoded and counted only if `tokens` is asked (a cut stream). */
  note(decode: () => string): void {
    this.#pending.push(decode);
  }

  /** Tokens delivered so far. */
  get tokens(): number {
    this.#flush();
    return this.#counted;
  }

  #flush(): void {
    if (this.#pending.length === 0) return;
    this.#counted += this.#counter.count(this.#pending.map((piece) => (typeof piece === "string" ? piece : piece())).join(""));
    this.#pending = [];
    this.#pendingBound = 0;
  }
}

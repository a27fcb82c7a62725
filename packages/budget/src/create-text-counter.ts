/** Counts one whole text, the way tiktoken's `encode_ordinary(text).length` does. */
export type CountText = (text: string) => number;

/**
 * Counts one piece of the split pattern (for {@link createTextCounter}) by byte-pair merging its
 * UTF-8 bytes with the encoding's ranks, as tiktoken merges each piece: `ranks[rank]` is a
 * token's text, or its bytes when they are not UTF-8 (gpt-tokenizer's `bpeRanks` tables). Bytes
 * are held as latin1 strings (one character per byte), so an ASCII piece is its own key and a
 * lookup is one Map probe. Building the table is one pass over the ranks: no tokenizer object,
 * no second table by bytes, about half of what loading gpt-tokenizer's encoder costs. Pieces are
 * short (createTextCounter slices any over 2,048 characters); the merge is quadratic in one.
 * Self-contained, like {@link createTextCounter}: the counting threads get its source.
 */
export function createRankedPieceCounter(ranks: readonly (string | readonly number[])[]): (piece: string) => number {
  const table = new Map<string, number>();
  const ascii = /^[\x00-\x7f]*$/;
  // ASCII tokens are their own keys; the others are UTF-8 encoded all at once (one string, one
  // encode) and cut by their byte lengths, counted here as the encoder counts them.
  const wide: number[] = [];
  for (let rank = 0; rank < ranks.length; rank++) {
    const token = ranks[rank]!;
    if (typeof token !== "string") {
      table.set(String.fromCharCode(...token), rank);
      continue;
    }
    let index = 0;
    while (index < token.length && token.charCodeAt(index) < 128) index++;
    if (index === token.length) table.set(token, rank);
    else wide.push(rank);
  }
  const encoded = Buffer.from(wide.map((rank) => ranks[rank] as string).join(""), "utf8").toString("latin1");
  let offset = 0;
  for (const rank of wide) {
    const token = ranks[rank] as string;
    let bytes = 0;
    for (let index = 0; index < token.length; index++) {
      const code = token.charCodeAt(index);
      if (code < 0x80) bytes += 1;
      else if (code < 0x800) bytes += 2;
      else if (code >= 0xd800 && code <= 0xdbff && (token.charCodeAt(index + 1) & 0xfc00) === 0xdc00) {
        bytes += 4;
        index++;
      } else bytes += 3;
    }
    table.set(encoded.slice(offset, offset + bytes), rank);
    offset += bytes;
  }
  const NONE = Number.POSITIVE_INFINITY;
  const starts: number[] = [];
  const pairRanks: number[] = [];
  return (piece: string): number => {
    const bytes = ascii.test(piece) ? piece : Buffer.from(piece, "utf8").toString("latin1");
    if (bytes.length < 2 || table.has(bytes)) return 1;
    // The merge: parts start at starts[i]; pairRanks[i] is the rank of parts i and i+1 joined.
    const length = bytes.length;
    starts.length = 0;
    pairRanks.length = 0;
    for (let index = 0; index <= length; index++) {
      starts.push(index);
      pairRanks.push(index + 2 <= length ? (table.get(bytes.slice(index, index + 2)) ?? NONE) : NONE);
    }
    const rankAt = (part: number) => (part + 2 < starts.length ? (table.get(bytes.slice(starts[part]!, starts[part + 2]!)) ?? NONE) : NONE);
    while (starts.length > 2) {
      let lowest = NONE;
      let at = -1;
      for (let part = 0; part < pairRanks.length - 1; part++) {
        if (pairRanks[part]! < lowest) {
          lowest = pairRanks[part]!;
          at = part;
        }
      }
      if (at === -1) break;
      starts.splice(at + 1, 1);
      pairRanks.splice(at + 1, 1);
      pairRanks[at] = rankAt(at);
      if (at > 0) pairRanks[at - 1] = rankAt(at - 1);
    }
    return starts.length - 1;
  };
}

/**
 * Builds the function that counts a text for one encoding. With `splitRegex` (o200k_base) it
 * splits the text itself and counts each piece once per process: a hand-written scanner follows
 * the encoding's split pattern on ASCII (where the pattern's classes are plain character ranges)
 * and hands any piece touching a non-ASCII character to the pattern itself, so the pieces are the
 * pattern's pieces exactly; `countPiece` (gpt-tokenizer's byte-pair merge) counts each distinct
 * piece, and a bounded table remembers it. Source code repeats its pieces heavily (the vercel/ai
 * tree: 11M pieces, 138k distinct), so nearly every piece costs a map lookup instead of a merge.
 * A piece over 2,048 characters (a run of one class, never seen in real source) is merged in
 * 2,048-character slices, so counting stays linear in the text's length; its count may then
 * differ from tiktoken's by about a token per slice.
 *
 * Self-contained on purpose (no imports, no closures over module state): worker threads receive
 * its source text and build the very same counter.
 */
export function createTextCounter(
  countPiece: (text: string) => number,
  splitRegex: RegExp | undefined,
  maxPieces = 262_144,
  shared?: Int32Array,
): CountText {
  if (!splitRegex) return countPiece;
  const LONG_PIECE = 2048;
  const sticky = new RegExp(splitRegex.source, "uy");
  // 0 other (not letter, digit or whitespace), 1 upper, 2 lower, 3 digit, 4 blank (\t \v \f space), 5 newline (\r \n).
  const classes = new Uint8Array(128);
  for (let code = 0; code < 128; code++) {
    classes[code] =
      code >= 65 && code <= 90
        ? 1
        : code >= 97 && code <= 122
          ? 2
          : code >= 48 && code <= 57
            ? 3
            : code === 10 || code === 13
              ? 5
              : code === 9 || code === 11 || code === 12 || code === 32
                ? 4
                : 0;
  }
  // Most pieces of source code are short and ASCII: those of up to 16 characters are keyed by
  // their characters packed four to an integer, in an open-addressing table of eight-integer rows
  // (the key, its length and its count), so a piece seen before costs one probe in one cache line
  // and no allocation.
  // Longer or non-ASCII pieces go to a Map. Each holds at most `maxPieces`.
  //
  // With `shared` (from {@link createSharedPieceTable}), the
  // table is the one every counting thread uses, so each distinct piece is merged once in all:
  // a row is claimed by a compare-and-swap of its length (0, empty, to -1, being written), its
  // key and count written, then its length stored; a reader loads the length atomically first,
  // so it sees a row whole or not at all. The last integer counts the rows filled.
  let capacity = 1024;
  while (capacity < maxPieces * 2) capacity *= 2;
  if (shared) capacity = (shared.length - 1) / 8;
  const mask = capacity - 1;
  const rows = shared ?? new Int32Array(capacity * 8);
  const filled = capacity * 8;
  let packed = 0;
  const others = new Map<string, number>();
  const lookup = (text: string, start: number, end: number): number => {
    const length = end - start;
    if (length <= 16) {
      // Up to 16 ASCII characters, four to an integer.
      let k0 = 0;
      let k1 = 0;
      let k2 = 0;
      let k3 = 0;
      let index = 0;
      for (; index < length; index++) {
        const code = text.charCodeAt(start + index);
        if (code > 127) break;
        const shift = (index & 3) << 3;
        if (index < 4) k0 |= code << shift;
        else if (index < 8) k1 |= code << shift;
        else if (index < 12) k2 |= code << shift;
        else k3 |= code << shift;
      }
      if (index === length) {
        let mixed = Math.imul(k0, -1640531535) ^ Math.imul(k1 + length, -2048144789) ^ Math.imul(k2, 668265263) ^ Math.imul(k3, 374761393);
        mixed ^= mixed >>> 15;
        let at = (mixed & mask) << 3;
        for (;;) {
          const rowLength = shared ? Atomics.load(rows, at + 4) : rows[at + 4]!;
          if (rowLength === 0) break;
          if (rowLength === length && rows[at] === k0 && rows[at + 1] === k1 && rows[at + 2] === k2 && rows[at + 3] === k3)
            return rows[at + 5]!;
          at = (at + 8) & (mask << 3);
        }
        const tokens = countPiece(text.slice(start, end));
        // Shared: another thread may take this row first; then this piece is simply not remembered here.
        const claimed = shared
          ? Atomics.load(rows, filled) < maxPieces && Atomics.compareExchange(rows, at + 4, 0, -1) === 0
          : packed < maxPieces;
        if (claimed) {
          rows[at] = k0;
          rows[at + 1] = k1;
          rows[at + 2] = k2;
          rows[at + 3] = k3;
          rows[at + 5] = tokens;
          if (shared) {
            Atomics.store(rows, at + 4, length);
            Atomics.add(rows, filled, 1);
          } else {
            rows[at + 4] = length;
            packed++;
          }
        }
        return tokens;
      }
    }
    // A piece longer than any in real source (the vercel/ai tree's longest is 201 characters) is
    // a run of one class: letters, blanks or punctuation. The byte-pair merge is quadratic in a
    // piece's length (a megabyte of spaces took minutes), so such a piece is merged in slices of
    // LONG_PIECE characters, cut between code points: linear, within a token or so per slice of
    // the whole merge, and never remembered.
    if (end - start > LONG_PIECE) {
      let tokens = 0;
      for (let cut = start; cut < end;) {
        let next = Math.min(end, cut + LONG_PIECE);
        const last = text.charCodeAt(next - 1);
        if (next < end && last >= 0xd800 && last <= 0xdbff) next--;
        tokens += countPiece(text.slice(cut, next));
        cut = next;
      }
      return tokens;
    }
    const piece = text.slice(start, end);
    let tokens = others.get(piece);
    if (tokens === undefined) {
      tokens = countPiece(piece);
      if (others.size < maxPieces) others.set(piece, tokens);
    }
    return tokens;
  };
  const byPattern = (text: string, start: number): number => {
    sticky.lastIndex = start;
    const match = sticky.exec(text);
    // The pattern's last alternatives match any character, so it always advances.
    return start + (match ? match[0].length : 1);
  };
  const letter = (text: string, index: number, length: number): boolean => {
    if (index >= length) return false;
    const kind = classes[text.charCodeAt(index)];
    return kind === 1 || kind === 2;
  };
  return (text: string): number => {
    const length = text.length;
    let tokens = 0;
    let start = 0;
    while (start < length) {
      const code = text.charCodeAt(start);
      const next = start + 1 < length ? text.charCodeAt(start + 1) : 0;
      let end = start;
      if (code > 127 || next > 127) {
        end = byPattern(text, start);
        tokens += lookup(text, start, end);
        start = end;
        continue;
      }
      const kind = classes[code]!;
      if (kind === 1 || kind === 2 || ((kind === 0 || kind === 4) && letter(text, start + 1, length))) {
        // [^\r\n\p{L}\p{N}]? then upper* lower+ or upper+ lower*, then an optional contraction.
        if (kind === 0 || kind === 4) end++;
        while (end < length && classes[text.charCodeAt(end)] === 1) end++;
        while (end < length && classes[text.charCodeAt(end)] === 2) end++;
        if (end + 1 < length && text.charCodeAt(end) === 39) {
          const first = text.charCodeAt(end + 1) | 32;
          if (first === 115 || first === 100 || first === 109 || first === 116) end += 2;
          else if (end + 2 < length) {
            const second = text.charCodeAt(end + 2) | 32;
            if ((first === 108 && second === 108) || (first === 118 && second === 101) || (first === 114 && second === 101)) end += 3;
          }
        }
      } else if (kind === 3) {
        // \p{N}{1,3}
        end++;
        if (end < length && classes[text.charCodeAt(end)] === 3) end++;
        if (end < length && classes[text.charCodeAt(end)] === 3) end++;
      } else if (kind === 0 || (code === 32 && classes[next] === 0 && start + 1 < length)) {
        // " ?[^\s\p{L}\p{N}]+[\r\n/]*"
        if (kind !== 0) end++;
        while (end < length && classes[text.charCodeAt(end)] === 0) end++;
        while (end < length) {
          const after = text.charCodeAt(end);
          if (after === 10 || after === 13 || after === 47) end++;
          else break;
        }
      } else {
        // Whitespace: "\s*[\r\n]+", then "\s+(?!\S)", then "\s+".
        let run = start;
        let lastNewline = -1;
        while (run < length) {
          const runKind = classes[text.charCodeAt(run)];
          if (runKind === 5) lastNewline = run;
          else if (runKind !== 4) break;
          run++;
        }
        if (run < length && text.charCodeAt(run) > 127) {
          end = byPattern(text, start);
          tokens += lookup(text, start, end);
          start = end;
          continue;
        }
        if (lastNewline >= 0) end = lastNewline + 1;
        else if (run === length || run - start === 1) end = run;
        else end = run - 1;
      }
      // A non-ASCII character right after the piece might belong to it under the Unicode classes.
      if (end < length && text.charCodeAt(end) > 127) end = byPattern(text, start);
      // One ASCII character is always one token.
      tokens += end - start === 1 && text.charCodeAt(start) < 128 ? 1 : lookup(text, start, end);
      start = end;
    }
    return tokens;
  };
}

/**
 * A piece table for {@link createTextCounter}'s `shared`, on a SharedArrayBuffer that every
 * counting thread is given: the rows of a table for `maxPieces` pieces (a power of two, at least
 * twice `maxPieces`, as the counter sizes its own) and one integer counting the rows filled.
 */
export function createSharedPieceTable(maxPieces = 262_144): Int32Array {
  let capacity = 1024;
  while (capacity < maxPieces * 2) capacity *= 2;
  return new Int32Array(new SharedArrayBuffer((capacity * 8 + 1) * Int32Array.BYTES_PER_ELEMENT));
}

import { createRequire } from "node:module";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createRankedPieceCounter, createTextCounter } from "./create-text-counter.js";
import { createTokenCounter } from "./create-token-counter.js";

const require = createRequire(import.meta.url);
const tiktoken = require("tiktoken") as { get_encoding(name: string): { encode_ordinary(text: string): Uint32Array; free(): void } };
const gpt = require("gpt-tokenizer/cjs/encoding/o200k_base") as { countTokens(text: string, options: object): number };
const { O200K_TOKEN_SPLIT_REGEX } = require("gpt-tokenizer/cjs/encodingParams/constants") as { O200K_TOKEN_SPLIT_REGEX: RegExp };
const ranks = (require("gpt-tokenizer/cjs/bpeRanks/o200k_base") as { default: (string | number[])[] }).default;

// Characters that sit on the split pattern's edges: case changes, contractions, digits, every
// kind of whitespace, slashes after punctuation, and non-ASCII letters, marks and spaces.
const alphabet = [
  ..."aZ'sSdtlLvVeErR09 \t\n\r\v\f/.-_(){}<>|=;:\"`\u0000\u007f",
  "é",
  "É",
  "ß",
  "\u0301",
  "\u00a0",
  "\u2028",
  "日",
  "🚀",
  "١",
];
const text = fc.array(fc.constantFrom(...alphabet), { maxLength: 80 }).map((chars) => chars.join(""));

describe("createTextCounter (o200k pieces)", () => {
  const encoder = tiktoken.get_encoding("o200k_base");
  const count = createTextCounter(createRankedPieceCounter(ranks), O200K_TOKEN_SPLIT_REGEX);

  it("property: counts exactly what tiktoken's encode_ordinary counts", () => {
    fc.assert(
      fc.property(text, (sample) => {
        expect(count(sample)).toBe(encoder.encode_ordinary(sample).length);
      }),
      { numRuns: 3000 },
    );
  });

  it("property: merges any piece as tiktoken does, non-UTF-8 tokens and lone surrogates included", () => {
    // Whole texts of any code points (astral ones, unpaired surrogates, controls) through the split
    // and the merge, and each piece alone, merged with the rank table, beside gpt-tokenizer.
    const countPiece = createRankedPieceCounter(ranks);
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 40 }), (sample) => {
        expect(count(sample)).toBe(encoder.encode_ordinary(sample).length);
        for (const [piece] of sample.matchAll(O200K_TOKEN_SPLIT_REGEX))
          expect(countPiece(piece)).toBe(gpt.countTokens(piece, { disallowedSpecial: new Set() }));
      }),
      { numRuns: 2000 },
    );
  });

  it("counts special tokens as ordinary text, and code, unicode and long runs the same as tiktoken", () => {
    const samples = [
      "<|endoftext|> and <|im_start|>user is just text",
      "HTTPServer parseJSON we'll don't I'M 123456 x/y//z ..\n\n\t  \n   end",
      "const ünïcödé = '✓'; // 🚀 emoji — dash\u00a0nbsp",
      " ".repeat(5000) + "x" + "\n".repeat(300) + "a".repeat(3000),
    ];
    for (const sample of samples) expect(count(sample)).toBe(encoder.encode_ordinary(sample).length);
  });

  it("property: pieces packed by their characters (up to 16 ASCII) never collide, full tables stay exact", () => {
    // Words of 1–20 characters around the 4-, 8-, 12- and 16-character packing edges, NULs that pack as zero bits,
    // and a table capped at 4 pieces, so most pieces are counted without being remembered.
    const small = createTextCounter((piece) => gpt.countTokens(piece, { disallowedSpecial: new Set() }), O200K_TOKEN_SPLIT_REGEX, 4);
    const word = fc.array(fc.constantFrom(..."abyzAZ\u0000é"), { minLength: 1, maxLength: 20 }).map((chars) => chars.join(""));
    fc.assert(
      fc.property(fc.array(word, { maxLength: 20 }), (words) => {
        const sample = words.join(" ");
        const expected = encoder.encode_ordinary(sample).length;
        expect(count(sample)).toBe(expected);
        expect(small(sample)).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("createTextCounter on a pathological piece", () => {
  it("merges a piece over 2,048 characters in slices, so the merge is never quadratic", () => {
    const longest: number[] = [];
    const count = createTextCounter((piece) => {
      longest.push(piece.length);
      return gpt.countTokens(piece, { disallowedSpecial: new Set() });
    }, O200K_TOKEN_SPLIT_REGEX);
    // A megabyte of spaces, of one letter and of dashes: each is a single piece of the split
    // pattern. Merged whole, the first took minutes; sliced, each merge sees 2,048 characters.
    const runs = [" ".repeat(1 << 20), "a".repeat(1 << 20), "-".repeat(1 << 20), `x${"é".repeat(5000)}🚀`.repeat(3)];
    const encoder = tiktoken.get_encoding("o200k_base");
    try {
      for (const run of runs) {
        const tokens = count(run);
        expect(tokens).toBeGreaterThan(0);
        // Within a token per slice of the exact count, checked where the exact merge is affordable.
        if (run.length < 50_000)
          expect(Math.abs(tokens - encoder.encode_ordinary(run).length)).toBeLessThanOrEqual(Math.ceil(run.length / 2048));
      }
      expect(Math.max(...longest)).toBeLessThanOrEqual(2048);
      // Real text is unaffected: its pieces are far shorter.
      expect(count("const x = 1;\n".repeat(1000))).toBe(encoder.encode_ordinary("const x = 1;\n".repeat(1000)).length);
    } finally {
      encoder.free();
    }
  });
});

describe("countMany", () => {
  it("counts a large batch on worker threads exactly as count does", async () => {
    using counter = createTokenCounter({ encoding: "o200k_base" });
    const texts = Array.from({ length: 400 }, (_, index) =>
      `export const value${index} = "<|endoftext|> ${"é".repeat(index % 7)}";\n`.repeat(40),
    );
    const counts = await counter.countMany(texts);
    expect(counts).toEqual(texts.map((entry) => counter.count(entry)));
    using tiktokenCounter = createTokenCounter({ encoding: "o200k_base", engine: "tiktoken" });
    expect(await tiktokenCounter.countMany(texts)).toEqual(counts);
  });

  it("property: the threads share one piece table and still count every text exactly", async () => {
    // Batches sent at once go to both threads, which insert the same new pieces concurrently.
    const word = fc.array(fc.constantFrom(..."abcdeXYZ_01 .\n"), { minLength: 1, maxLength: 9 }).map((chars) => chars.join(""));
    await fc.assert(
      fc.asyncProperty(fc.array(word, { minLength: 50, maxLength: 200 }), fc.integer({ min: 0, max: 1e9 }), async (words, seed) => {
        using counter = createTokenCounter({ encoding: "o200k_base" });
        const texts = Array.from({ length: 240 }, (_, index) => {
          let text = "";
          for (let at = 0; text.length < 7000; at++) text += words[(seed + index * 7 + at * 13) % words.length];
          return text;
        });
        const batches = [texts.slice(0, 80), texts.slice(80, 160), texts.slice(160)];
        const counts = (await Promise.all(batches.map((batch) => counter.countManyBytes(batch.map((text) => Buffer.from(text)))))).flat();
        const encoder = tiktoken.get_encoding("o200k_base");
        try {
          expect(counts).toEqual(texts.map((text) => encoder.encode_ordinary(text).length));
        } finally {
          encoder.free();
        }
      }),
      { numRuns: 6 },
    );
  });

  it("countManyBytes decodes on the threads as Buffer.toString does: a BOM kept, bad UTF-8 replaced", async () => {
    using counter = createTokenCounter({ encoding: "o200k_base" });
    const texts = Array.from({ length: 300 }, (_, index) =>
      Buffer.concat([
        Buffer.from(index % 3 === 0 ? "\ufeffexport const bom = 1;\n" : "const x = 'é🚀';\n"),
        // A lone continuation byte, a truncated sequence and an overlong form: each is U+FFFD.
        Buffer.from([0x80, 0x41, 0xe2, 0x82, 0x20, 0xc0, 0xaf]),
        Buffer.from(`value${index}\n`.repeat(200)),
      ]),
    );
    // Past the inline threshold, so the batch goes to the worker threads.
    expect(texts.reduce((total, text) => total + text.length, 0)).toBeGreaterThan(512 * 1024);
    const expected = texts.map((bytes) => counter.count(bytes.toString("utf8")));
    expect(await counter.countManyBytes(texts)).toEqual(expected);
    // Views into a larger buffer (as Buffer.allocUnsafe pools small files) are copied, not moved.
    const pooled = Buffer.concat(texts);
    let offset = 0;
    const views = texts.map((text) => pooled.subarray(offset, (offset += text.length)));
    expect(await counter.countManyBytes(views)).toEqual(expected);
    expect(pooled.byteLength).toBe(offset);
    await expect(counter.countManyBytes(["text" as unknown as Uint8Array])).rejects.toThrow("expected an array of Uint8Array");
  });

  it("refuses what is not an array of strings, and an aborted signal", async () => {
    using counter = createTokenCounter({ encoding: "cl100k_base" });
    await expect(counter.countMany([1 as unknown as string])).rejects.toThrow("expected an array of strings");
    const big = ["x ".repeat(600_000)];
    await expect(counter.countMany(big, { abortSignal: AbortSignal.abort() })).rejects.toThrow(/canceled/);
  });
});

import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { createTokenCounter, MESSAGE_FRAMING } from "./create-token-counter.js";

const require = createRequire(import.meta.url);
const tiktoken = require("tiktoken") as { get_encoding(name: string): { encode_ordinary(text: string): Uint32Array; free(): void } };

const samples = [
  "hello world",
  "export function rateLimit(request: Request): boolean {\n  return bucket.take(request.user.id);\n}\n".repeat(20),
  "Ünïcödé ✓ and emoji 🚀 — mixed with code `const x = 1;`",
  "<|endoftext|> is just text here",
];

describe("createTokenCounter", () => {
  it("counts exactly what raw tiktoken counts, for both encodings", () => {
    for (const encoding of ["o200k_base", "cl100k_base"] as const) {
      using counter = createTokenCounter({ encoding });
      const raw = tiktoken.get_encoding(encoding);
      for (const text of samples)
        expect(counter.countWithBound(text)).toEqual({
          tokens: raw.encode_ordinary(text).length,
          upperBound: raw.encode_ordinary(text).length,
          method: "exact",
        });
      raw.free();
      expect(counter.estimated).toBe(false);
      expect(counter.name).toBe(encoding);
    }
  });

  it("maps OpenAI models to their encoding", () => {
    expect(createTokenCounter({ model: "gpt-4o-mini" }).encoding).toBe("o200k_base");
    expect(createTokenCounter({ model: "gpt-5" }).encoding).toBe("o200k_base");
    expect(createTokenCounter({ model: "gpt-4-turbo" }).encoding).toBe("cl100k_base");
    expect(createTokenCounter({ model: "openai/o3-mini" }).encoding).toBe("o200k_base");
  });

  it("estimates Claude with o200k times a factor, with an upper bound, and learns from usage", () => {
    using o200k = createTokenCounter({ encoding: "o200k_base" });
    using sonnet = createTokenCounter({ model: "claude-sonnet-4-5" });
    using opus = createTokenCounter({ model: "claude-opus-4-7" });
    const text = samples[1]!;
    const base = o200k.count(text);
    expect(sonnet.countWithBound(text)).toEqual({
      tokens: Math.ceil(base * 1.18),
      upperBound: Math.ceil(Math.ceil(base * 1.18) * 1.15),
      method: "estimate",
    });
    expect(opus.count(text)).toBe(Math.ceil(base * 1.53));
    expect(sonnet.estimated).toBe(true);
    const estimated = sonnet.count(text);
    const learned = sonnet.calibrate("claude-sonnet-4-5", estimated, Math.round(estimated * 1.2));
    expect(learned.factor).toBeCloseTo(1.18 * 1.1, 2);
    expect(sonnet.count(text)).toBeGreaterThan(estimated);
    expect(() => sonnet.calibrate("claude-sonnet-4-5", 0, 10)).toThrow("expected positive token counts");
  });

  it("refuses unknown models and bad options with clear errors", () => {
    expect(() => createTokenCounter({ model: "llama-3-70b" })).toThrow(
      /no tokenizer known for model "llama-3-70b": pass \{ encoding \} instead/,
    );
    expect(() => createTokenCounter({ encoding: "p50k_base" as never })).toThrow(
      'invalid options: expected { encoding: "o200k_base" | "cl100k_base" } or { model: string }',
    );
  });

  it("caches by content hash: counting the same text twice costs one count", () => {
    using counter = createTokenCounter({ encoding: "o200k_base" });
    const text = samples[1]!;
    counter.count(text);
    counter.count(text);
    counter.count(`${text} `);
    expect(counter.cache).toEqual({ hits: 1, misses: 2, size: 2 });
  });

  it("counts chat messages and tool definitions with the documented framing", () => {
    using counter = createTokenCounter({ encoding: "o200k_base" });
    const messages = [
      { role: "system", content: "You are terse." },
      {
        role: "user",
        name: "ana",
        content: [
          { type: "text" as const, text: "Add a rate limit." },
          { type: "image", url: "x" },
        ],
      },
    ];
    const expected =
      MESSAGE_FRAMING.replyPriming +
      2 * MESSAGE_FRAMING.perMessage +
      counter.count("system") +
      counter.count("You are terse.") +
      counter.count("user") +
      MESSAGE_FRAMING.perName +
      counter.count("ana") +
      counter.count("Add a rate limit.");
    expect(counter.countMessages(messages)).toEqual({ tokens: expected, upperBound: expected, method: "exact", uncountedParts: 1 });
    const tool = {
      name: "run_tests",
      description: "Runs the test suite",
      parameters: { type: "object", properties: { filter: { type: "string" } } },
    };
    expect(counter.countTools([tool]).tokens).toBe(
      MESSAGE_FRAMING.perTool + counter.count(tool.name) + counter.count(tool.description) + counter.count(JSON.stringify(tool.parameters)),
    );
  });

  it("shares one encoder per encoding and frees it with the last counter", () => {
    const first = createTokenCounter({ encoding: "cl100k_base" });
    const second = createTokenCounter({ encoding: "cl100k_base" });
    first.count("a");
    second.count("b");
    first.dispose();
    first.dispose();
    expect(second.count("still works")).toBeGreaterThan(0);
    second.dispose();
    expect(() => second.count("x")).toThrow("this counter was disposed");
  });
});

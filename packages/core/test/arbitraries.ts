import fc from "fast-check";

/** Path pieces that attackers and confused agents use, glued in any order. */
export const hostilePath = fc
  .array(
    fc.oneof(
      fc.constantFrom("..", ".", "", "src", "middleware", "routes", "admin.ts", ".git", "~", "%2e%2e", "a b"),
      fc.constantFrom(
        "/",
        "\\",
        "//",
        "./",
        "../",
        "..\\",
        "\u2215",
        "\u2044",
        "\uFF0F",
        "\uFF0E\uFF0E",
        "\u2024\u2024",
        "C:",
        "\u0000",
        "\u200B",
      ),
      fc.string({ maxLength: 4 }),
    ),
    { maxLength: 12 },
  )
  .map((parts) => parts.join(""));

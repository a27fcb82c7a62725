/** The outcome of {@link normalizeRepoPath}: a clean relative path, or why there is none. */
export type NormalizedRepoPath = { ok: true; path: string } | { ok: false; reason: string };

// Characters that look like a slash, a backslash or a dot but are not: an agent (or an
// attacker) can use them to make a path read as something it is not.
const LOOK_ALIKES = /[\u2215\u2044\u29F8\u29F5\u2216\uFE68\uFF3C\uFF0F\u2024\uFE52\uFF0E\u3002\u2025\u2026\u2CC6\u30FB]|\u0338/u;
const CONTROL = /[\u0000-\u001F\u007F]/u;
const MAX_PATH_LENGTH = 4096;

function countSeparatorsAndDots(text: string): number {
  let count = 0;
  for (const char of text) if (char === "/" || char === "\\" || char === ".") count++;
  return count;
}

/**
 * Turns a path given for a repo into a clean relative POSIX path, or says why it cannot be one.
 * Backslashes count as separators, `.` and doubled slashes vanish, `..` is resolved and may not
 * climb above the repo root, absolute paths and drive letters are refused, and so are control
 * characters (unless `allowControl`: git names may hold newlines, never NUL) and Unicode
 * look-alikes of `/`, `\` and `.`. The repo root itself is `"."`.
 *
 * @example
 * normalizeRepoPath("src//routes/./user.ts"); // { ok: true, path: "src/routes/user.ts" }
 * normalizeRepoPath("src/../../etc/passwd");   // { ok: false, reason: "climbs above the repo root" }
 */
export function normalizeRepoPath(input: string, { allowControl = false }: { allowControl?: boolean } = {}): NormalizedRepoPath {
  if (typeof input !== "string" || input.length === 0) return { ok: false, reason: "is empty" };
  if (input.length > MAX_PATH_LENGTH) return { ok: false, reason: `is longer than ${MAX_PATH_LENGTH} characters` };
  if (allowControl ? input.includes("\0") : CONTROL.test(input)) return { ok: false, reason: "contains a control character" };
  const composed = input.normalize("NFC");
  if (LOOK_ALIKES.test(composed) || countSeparatorsAndDots(composed.normalize("NFKC")) !== countSeparatorsAndDots(composed)) {
    return { ok: false, reason: "contains a Unicode look-alike of '/', '\\' or '.'" };
  }
  const slashed = composed.replaceAll("\\", "/");
  if (slashed.startsWith("/") || /^[A-Za-z]:/.test(slashed)) {
    return { ok: false, reason: "is absolute; give it relative to the repo root" };
  }
  const segments: string[] = [];
  for (const segment of slashed.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") {
      if (segments.length === 0) return { ok: false, reason: "climbs above the repo root" };
      segments.pop();
      continue;
    }
    segments.push(segment);
  }
  // "./C:" must not become the drive-relative "C:" once its "./" is gone.
  if (/^[A-Za-z]:/.test(segments[0] ?? "")) return { ok: false, reason: "is absolute; give it relative to the repo root" };
  return { ok: true, path: segments.length === 0 ? "." : segments.join("/") };
}

/** True when `path` is `prefix` or lies under it (both normalized; `"."` contains everything). */
export function isPathWithin(path: string, prefix: string): boolean {
  return prefix === "." || path === prefix || path.startsWith(`${prefix}/`);
}

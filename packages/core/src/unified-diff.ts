/** The most bytes a proposal's diff may hold (the guard's own limit). */
const MAX_DIFF_CHARS = 4 * 1024 * 1024;
/** Above this many line pairs, the middle of a change is shown as removed-then-added, not aligned. */
const MAX_ALIGNED_CELLS = 4_000_000;

const isText = (bytes: Uint8Array | undefined): boolean => {
  if (!bytes) return true;
  const text = Buffer.from(bytes).toString("utf8");
  return !text.includes("\0") && Buffer.from(text, "utf8").equals(Buffer.from(bytes));
};

const linesOf = (bytes: Uint8Array | undefined): string[] => {
  if (!bytes || bytes.length === 0) return [];
  const text = Buffer.from(bytes).toString("utf8");
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines;
};

/** Removed and added lines between `before` and `after`, aligned by a longest common subsequence. */
function alignLines(before: readonly string[], after: readonly string[]): string[] {
  let start = 0;
  while (start < before.length && start < after.length && before[start] === after[start]) start++;
  let endBefore = before.length;
  let endAfter = after.length;
  while (endBefore > start && endAfter > start && before[endBefore - 1] === after[endAfter - 1]) {
    endBefore--;
    endAfter--;
  }
  const out = before.slice(0, start).map((line) => ` ${line}`);
  const left = before.slice(start, endBefore);
  const right = after.slice(start, endAfter);
  if (left.length * right.length > MAX_ALIGNED_CELLS) {
    out.push(...left.map((line) => `-${line}`), ...right.map((line) => `+${line}`));
  } else {
    // lengths[i][j]: the common subsequence of left[i..] and right[j..], one flat array.
    const width = right.length + 1;
    const lengths = new Uint32Array((left.length + 1) * width);
    for (let i = left.length - 1; i >= 0; i--)
      for (let j = right.length - 1; j >= 0; j--)
        lengths[i * width + j] =
          left[i] === right[j]
            ? lengths[(i + 1) * width + j + 1]! + 1
            : Math.max(lengths[(i + 1) * width + j]!, lengths[i * width + j + 1]!);
    let i = 0;
    let j = 0;
    while (i < left.length || j < right.length) {
      if (i < left.length && j < right.length && left[i] === right[j]) {
        out.push(` ${left[i]}`);
        i++;
        j++;
      } else if (i < left.length && (j === right.length || lengths[(i + 1) * width + j]! >= lengths[i * width + j + 1]!)) {
        // Removed lines before added ones, as git shows them.
        out.push(`-${left[i++]}`);
      } else out.push(`+${right[j++]}`);
    }
  }
  out.push(...before.slice(endBefore).map((line) => ` ${line}`));
  return out;
}

/**
 * A unified diff of one file against its base, with the whole file as context (one hunk), so the
 * complete new content can be read back from it: what a person approving a held cross-repo edit
 * sees, and what the guard keeps. Binary content, links and diffs over 4 MiB are described
 * instead (with sizes and blob ids).
 */
export function unifiedDiff({
  path,
  before,
  after,
  beforeOid,
  afterOid,
  link,
}: {
  path: string;
  before?: Uint8Array | undefined;
  after?: Uint8Array | undefined;
  beforeOid?: string | undefined;
  afterOid?: string | undefined;
  /** The new content is a symbolic link to this target. */
  link?: string | undefined;
}): string {
  const quoted = JSON.stringify(path).slice(1, -1);
  const header = [
    `diff --git a/${quoted} b/${quoted}`,
    `index ${(beforeOid ?? "0".repeat(40)).slice(0, 12)}..${(afterOid ?? "0".repeat(40)).slice(0, 12)}`,
    `--- ${before === undefined ? "/dev/null" : `a/${quoted}`}`,
    `+++ ${after === undefined && link === undefined ? "/dev/null" : `b/${quoted}`}`,
  ];
  if (link !== undefined) return [...header, `symbolic link to ${JSON.stringify(link)}`, ""].join("\n");
  if (!isText(before) || !isText(after))
    return [...header, `Binary files differ (${before?.length ?? 0} → ${after?.length ?? 0} bytes)`, ""].join("\n");
  const oldLines = linesOf(before);
  const newLines = linesOf(after);
  const body = alignLines(oldLines, newLines);
  const range = (count: number) => `${count === 0 ? 0 : 1},${count}`;
  const text = [...header, `@@ -${range(oldLines.length)} +${range(newLines.length)} @@`, ...body, ""].join("\n");
  if (text.length <= MAX_DIFF_CHARS) return text;
  return [...header, `Too large to show (${before?.length ?? 0} → ${after?.length ?? 0} bytes)`, ""].join("\n");
}

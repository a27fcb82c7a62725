import { isMap, isScalar, type Document, type LineCounter, type Node as YamlNode } from "yaml";

/** A key path into a parsed YAML document, as zod reports it. */
export type YamlPath = readonly PropertyKey[];

/** A key path as a person reads it: `context_scope.repos[0].name`. */
export function formatYamlPath(path: YamlPath): string {
  let text = "";
  for (const key of path) text += typeof key === "number" ? `[${key}]` : text === "" ? String(key) : `.${String(key)}`;
  return text;
}

/**
 * Where a key path is in its document, as a 1-based line and column: the deepest node that exists
 * along it, or, with `unknownKey`, that key of the map it ends at. `lineOffset` shifts the line for
 * a document embedded in a larger file (front matter after its `---`).
 */
export function locateYamlPath(
  document: Document,
  lines: LineCounter,
  path: YamlPath,
  { unknownKey, lineOffset = 0 }: { unknownKey?: string; lineOffset?: number } = {},
): { line: number; column: number } {
  let node: unknown = document.contents;
  for (const key of path) {
    const next = (node as { get?: (key: unknown, keepScalar: boolean) => unknown } | null)?.get?.(key, true);
    if (next === undefined || next === null) break;
    node = next;
  }
  if (unknownKey !== undefined && isMap(node)) {
    const pair = node.items.find((item) => isScalar(item.key) && item.key.value === unknownKey);
    if (pair && isScalar(pair.key)) node = pair.key;
  }
  const range = (node as YamlNode | null)?.range;
  if (!range) return { line: 1 + lineOffset, column: 1 };
  const position = lines.linePos(range[0]);
  return { line: position.line + lineOffset, column: position.col };
}

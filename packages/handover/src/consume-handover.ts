import { readFile } from "node:fs/promises";
import { formatZodIssues, InvalidArgumentError, withFileLock, writeFileAtomic } from "@bulkhead/core";
import { handoverSchema, type HandoverDocument } from "./handover-document.js";
import { HandoverConsumedError, InvalidHandoverError } from "./handover-errors.js";
import { parseHandover } from "./parse-handover.js";
import { renderHandover } from "./render-handover.js";

/** The JSON form of a handover, validated. */
export function handoverToJson(document: HandoverDocument): string {
  return `${JSON.stringify(handoverSchema.parse(document), null, 2)}\n`;
}

/** Reads the JSON form, validated; a malformed document throws {@link InvalidHandoverError}. */
export function handoverFromJson(text: string, { source = "handover.json" }: { source?: string } = {}): HandoverDocument {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InvalidHandoverError(source, `not JSON: ${(error as Error).message}`);
  }
  const result = handoverSchema.safeParse(json);
  if (!result.success) throw new InvalidHandoverError(source, formatZodIssues(result.error, { root: "(document)" }));
  return result.data;
}

/** Reads a handover file, Markdown (`.md`) or JSON (anything else). */
export async function loadHandover(path: string): Promise<HandoverDocument> {
  const text = await readFile(path, "utf8").catch((error: NodeJS.ErrnoException) => {
    throw new InvalidArgumentError("path", `cannot read handover ${path}: ${error.code ?? error.message}`, { cause: error });
  });
  return path.endsWith(".md") ? parseHandover(text, { source: path }) : handoverFromJson(text, { source: path });
}

/**
 * Marks a handover file consumed, atomically and once: under a lock, it is read, checked and
 * rewritten (temporary file, then rename). A second consume throws {@link HandoverConsumedError}.
 *
 * @example
 * const document = await consumeHandover("handover.md", { by: "agent-2" });
 */
export async function consumeHandover(
  path: string,
  { by, now = () => new Date() }: { by: string; now?: () => Date },
): Promise<HandoverDocument> {
  if (typeof by !== "string" || by.trim() === "" || /[\r\n]/.test(by))
    throw new InvalidArgumentError("by", "say who consumes the handover, on one line");
  return withFileLock(`${path}.lock`, async () => {
    const document = await loadHandover(path);
    if (document.consumed) throw new HandoverConsumedError(path, document.consumed.by, document.consumed.at);
    const consumed: HandoverDocument = { ...document, consumed: { by, at: now().toISOString() } };
    await writeFileAtomic(path, path.endsWith(".md") ? renderHandover(consumed) : handoverToJson(consumed));
    return consumed;
  });
}

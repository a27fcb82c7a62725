import type { z } from "zod";

/**
 * The one rendering of zod issues in bulkhead's messages: `key.path: problem; other.key: problem`.
 * {@link validateOptions} uses it for arguments; parsers that throw their own error (a handover, a
 * price table) use it for documents. `root` names an issue without a path (the whole value).
 *
 * @example
 * const result = schema.safeParse(json);
 * if (!result.success) throw new InvalidHandoverError(source, formatZodIssues(result.error, { root: "(document)" }));
 */
export function formatZodIssues(error: z.ZodError, { root = "" }: { /** @default "" */ root?: string } = {}): string {
  return error.issues
    .map((issue) => {
      const key = issue.path.length > 0 ? issue.path.map(String).join(".") : root;
      return key === "" ? issue.message : `${key}: ${issue.message}`;
    })
    .join("; ");
}

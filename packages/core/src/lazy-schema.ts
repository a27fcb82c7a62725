import type { z } from "zod";

/**
 * A zod schema built on first use instead of at import, so importing a package costs nothing for
 * the schemas a program never validates with. Call the returned function where the schema is
 * needed; it builds once and returns the same schema after.
 *
 * @example
 * const optionsSchema = lazySchema(() => z.object({ id: z.string() }));
 * validateOptions(optionsSchema(), options, "options");
 */
export function lazySchema<TSchema extends z.ZodType>(build: () => TSchema): () => TSchema {
  let schema: TSchema | undefined;
  return () => (schema ??= build());
}

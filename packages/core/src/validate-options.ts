import type { z } from "zod";
import { formatZodIssues } from "./format-zod-issues.js";
import { InvalidArgumentError } from "./invalid-argument-error.js";

/**
 * Validates an argument once, up front, and throws {@link InvalidArgumentError} naming the
 * parameter, the key and the offending value.
 */
export function validateOptions<TSchema extends z.ZodType>(schema: TSchema, value: unknown, parameter: string): z.output<TSchema> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new InvalidArgumentError(parameter, formatZodIssues(result.error), { cause: result.error });
}

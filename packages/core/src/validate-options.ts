import type { z } from "zod";
import { InvalidArgumentError } from "./invalid-argument-error.js";

/**
 * Validates an argument once, up front, and throws {@link InvalidArgumentError} naming the
 * parameter, the key and the offending value.
 */
export function validateOptions<TSchema extends z.ZodType>(schema: TSchema, value: unknown, parameter: string): z.output<TSchema> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const details = result.error.issues
    .map((issue) => {
      const key = issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
      return `${key}${issue.message}`;
    })
    .join("; ");
  throw new InvalidArgumentError(parameter, details, { cause: result.error });
}

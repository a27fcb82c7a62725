// Internal: Anthropic's usage updates, merged as the API documents them.

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);

/** Copies the usage fields that carry a value, nested objects field by field: `message_delta` may send nulls. */
export function mergeUsage(into: Json, from: Json): Json {
  const merged = { ...into };
  for (const [key, value] of Object.entries(from)) {
    if (value === null || value === undefined) continue;
    merged[key] = isObject(value) && isObject(into[key]) ? mergeUsage(into[key], value) : value;
  }
  return merged;
}

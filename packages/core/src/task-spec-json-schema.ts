import { z } from "zod";
import { taskSpecFileSchema } from "./task-spec.js";

/**
 * The JSON Schema (draft 2020-12) of a task spec file, for editors and other languages. The
 * package also ships it as `@bulkhead/core/task-spec.schema.json`.
 *
 * @example
 * # yaml-language-server: $schema=./node_modules/@bulkhead/core/dist/task-spec.schema.json
 */
export function taskSpecJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(taskSpecFileSchema(), { io: "input" }),
    $id: "https://bulkhead.dev/schemas/task-spec.schema.json",
    title: "bulkhead task spec (handover.yaml)",
  };
}

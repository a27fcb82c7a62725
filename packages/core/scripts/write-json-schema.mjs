// Writes the task spec's JSON Schema next to the build, so editors can use it from the package.
import { writeFileSync } from "node:fs";
import { taskSpecJsonSchema } from "../dist/index.js";

writeFileSync(new URL("../dist/task-spec.schema.json", import.meta.url), `${JSON.stringify(taskSpecJsonSchema(), null, 2)}\n`);

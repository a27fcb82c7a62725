// Increments a counter file N times, each read-modify-write under withFileLock.
import { readFileSync, writeFileSync } from "node:fs";
import { withFileLock } from "../src/with-file-lock.js";

const [counter, times] = process.argv.slice(2) as [string, string];
for (let index = 0; index < Number(times); index++) {
  await withFileLock(`${counter}.lock`, async () => {
    const value = Number(readFileSync(counter, "utf8"));
    await new Promise((resolve) => setImmediate(resolve));
    writeFileSync(counter, String(value + 1));
  });
}

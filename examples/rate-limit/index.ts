// `npm run demo`: seed 000's rate-limit task, end to end. See run-demo.ts.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runRateLimitDemo } from "./run-demo.js";

const root = mkdtempSync(join(tmpdir(), "bulkhead-demo-"));
try {
  const started = Date.now();
  const result = await runRateLimitDemo({ root, log: (line) => console.log(`  ${line}`) });
  console.log(`\n${readFileSync(result.handoverPath, "utf8")}`);
  console.log(
    `done in ${((Date.now() - started) / 1000).toFixed(1)} s: 1 commit (${result.sha.slice(0, 12)}), ${result.held.length} change held for approval, ${result.totalTokens.toLocaleString("en-US")} tokens metered`,
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}

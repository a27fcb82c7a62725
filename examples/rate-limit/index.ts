// `npm run demo`: seed 000's task with the real Claude Code CLI, end to end. See run-demo.ts.
// `npm run demo -- --json`: the same run, its progress on stderr and one JSON document on stdout.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runRateLimitDemo } from "./run-demo.js";

const json = process.argv.includes("--json");
const root = mkdtempSync(join(tmpdir(), "bulkhead-demo-"));
try {
  const started = Date.now();
  // Each line with the seconds since the start, so where the time goes is plain.
  const stamp = (line: string) => `${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s  ${line}`;
  const result = await runRateLimitDemo({ root, log: (line) => (json ? console.error(stamp(line)) : console.log(stamp(line))) });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (json) {
    const { upstream, ...report } = result;
    console.log(
      JSON.stringify(
        {
          ...report,
          upstreamRequests: upstream?.requests.length,
          handover: readFileSync(result.handoverPath, "utf8"),
          seconds: Number(seconds),
        },
        null,
        2,
      ),
    );
  } else {
    console.log(`\n${readFileSync(result.handoverPath, "utf8")}`);
    console.log(
      `done in ${seconds} s: the real Claude Code CLI ${result.scripted ? "against a SCRIPTED model" : "against the configured upstream"}; 1 commit (${result.sha.slice(0, 12)}), ${result.held.length} change held for approval, ${result.totalTokens.toLocaleString("en-US")} tokens metered by the gateway over ${result.stats.calls} calls${result.refusedBy ? `, 1 call refused on the wire by the ${result.refusedBy} budget` : ""}`,
    );
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}

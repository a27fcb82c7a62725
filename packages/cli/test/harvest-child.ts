// A controller process for the kill -9 test: reads a session's change set, fetches its code, or
// harvests it, and prints the outcome as one JSON line. The test kills it at random points.
//   harvest-child.ts <home> <session id> <spec path> <proposals dir> <changes|fetch|harvest>
import { createFileProposalStore, createMultiRepoGuard, loadTaskSpec } from "@bulkhead/core";
import { getSession } from "@bulkhead/sandbox";
import { harvest } from "../src/harvest.js";

const [home, id, specPath, proposals, mode] = process.argv.slice(2) as [string, string, string, string, string];
const session = getSession(id, { home });
// Start-up is done: the test's kill timer starts here, so it lands in the work on any machine.
process.stderr.write("ready\n");
if (mode === "changes") {
  const changes = await session.changes();
  process.stdout.write(`${JSON.stringify({ paths: changes.repos.map((repo) => repo.paths.length) })}\n`);
} else if (mode === "fetch") {
  const fetched = await session.fetchCode({ strict: true });
  process.stdout.write(`${JSON.stringify({ commits: fetched.map((result) => result.commit ?? null) })}\n`);
} else {
  const spec = await loadTaskSpec(specPath);
  const guard = createMultiRepoGuard({ primaryRepo: spec.ownership.primaryRepo, store: createFileProposalStore(proposals) });
  const result = await harvest({ session, spec, guard, author: { name: "Lead", email: "lead@example.com" } });
  process.stdout.write(`${JSON.stringify({ sha: result.commits[0]?.sha ?? null })}\n`);
}

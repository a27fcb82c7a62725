// The core demo: seed 000's task spec, resolved over a generated tree of three repos, checked
// against its limits, and a cross-repo edit held by the MultiRepoGuard for approval.
// Run it with `npm run demo`.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createMemoryProposalStore, MultiRepoGuard, parseTaskSpec, resolveScope } from "@bulkhead/core";

const handoverYaml = `# handover.yaml (seed 000)
task: "Add rate limiting to user API"
context_scope:
  repos:
    - name: "backend-api"
      paths: ["src/routes/user.ts", "src/middleware/"]
      exclude: ["src/routes/admin.ts"]
  max_files: 15
  max_tokens: 50000
ownership:
  primary_repo: "backend-api"
  allowed_cross_repo_reads: ["shared-types"]
  allowed_cross_repo_writes: []
`;

const workspace = mkdtempSync(join(tmpdir(), "bulkhead-demo-"));
const write = (path: string, content: string) => {
  mkdirSync(dirname(join(workspace, path)), { recursive: true });
  writeFileSync(join(workspace, path), content);
};
try {
  write("backend-api/.gitignore", "node_modules/\n");
  write(
    "backend-api/src/routes/user.ts",
    'import { Router } from "./router";\n\nexport const user = new Router().get("/users/:id", (request) => request.params.id);\n',
  );
  write("backend-api/src/routes/admin.ts", "export const admin = 'kept out of scope by exclude';\n");
  write("backend-api/src/routes/index.ts", "export * from './user';\n");
  write("backend-api/src/middleware/auth.ts", "export function auth(token: string): boolean {\n  return token.length > 0;\n}\n");
  write("backend-api/src/middleware/logging.ts", "export const log = (line: string) => console.log(line);\n");
  write("backend-api/node_modules/huge/index.js", "// ignored by .gitignore\n".repeat(1000));
  write("shared-types/src/user.ts", "export interface User { id: string }\n");
  write("frontend/src/api.ts", "export const fetchUser = (id: string) => fetch(`/users/${id}`);\n");

  const spec = parseTaskSpec(handoverYaml, { source: "handover.yaml", knownRepos: ["backend-api", "shared-types", "frontend"] });
  console.log(`task: ${spec.task}`);

  const repos = { "backend-api": join(workspace, "backend-api") };
  const scope = await resolveScope(spec, { repos });
  console.log(`\nscope (${scope.totals.files} files, ${scope.totals.tokens} tokens${scope.estimated ? ", estimated from bytes" : ""}):`);
  for (const file of scope.files) console.log(`  ${file.repo}/${file.path}  ${file.bytes} B  ${file.tokens} tokens`);
  scope.assertWithinLimits();
  console.log(`within max_files ${spec.contextScope.maxFiles} and max_tokens ${spec.contextScope.maxTokens}`);

  console.log("\npermissions:");
  for (const [repo, path] of [
    ["backend-api", "src/middleware/rate-limit.ts"],
    ["backend-api", "src/routes/admin.ts"],
    ["backend-api", "src/middleware/../routes/admin.ts"],
    ["shared-types", "src/user.ts"],
    ["frontend", "src/api.ts"],
  ] as const) {
    console.log(`  ${repo}/${path}: read ${scope.canRead(repo, path) ? "yes" : "no"}, write ${scope.canWrite(repo, path) ? "yes" : "no"}`);
  }

  const guard = new MultiRepoGuard({ primaryRepo: spec.ownership.primaryRepo, scope, store: createMemoryProposalStore() });
  guard.on("proposal-pending", ({ proposal }) =>
    console.log(`  held for approval: ${proposal.repo}/${proposal.file} (${proposal.reason}), id ${proposal.id}`),
  );
  console.log("\nguard:");
  const own = await guard.propose({
    repo: "backend-api",
    file: "src/middleware/rate-limit.ts",
    diff: "+export const rateLimit = ...",
    author: "agent",
  });
  console.log(`  backend-api/src/middleware/rate-limit.ts: ${own.status}`);
  await guard.propose({ repo: "frontend", file: "src/api.ts", diff: "+if (response.status === 429) retry()", author: "agent" });
  console.log(`  requires human approval: ${await guard.requiresHumanApproval()}`);
} finally {
  rmSync(workspace, { recursive: true, force: true });
}

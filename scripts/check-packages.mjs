// `npm run check:packages`: every published package must lint clean (publint), have correct
// types (are-the-types-wrong), and work when installed from its packed tarball into an empty
// project, outside the workspace. Fails when an export is missing from the tarball.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const root = resolve(import.meta.dirname, "..");
const packages = readdirSync(join(root, "packages"))
  .map((name) => ({
    dir: join(root, "packages", name),
    manifest: JSON.parse(readFileSync(join(root, "packages", name, "package.json"), "utf8")),
  }))
  .filter(({ manifest }) => !manifest.private);

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: "utf8", ...options });
  if (result.status !== 0) {
    console.error(result.stdout, result.stderr);
    throw new Error(`${command} ${args.join(" ")} failed (exit ${result.status})`);
  }
  return result.stdout;
}

/** A line per package that must run from the installed tarball, beyond importing it. */
const smoke = {
  "@bulkhead/core": `if (api.parseTaskSpec('task: t\\ncontext_scope: { repos: [{ name: a, paths: [src] }], max_files: 1, max_tokens: 1 }\\nownership: { primary_repo: a }').ownership.primaryRepo !== "a") throw new Error("parseTaskSpec");`,
  "@bulkhead/postgres": `if (typeof api.createStore !== "function" || typeof api.createPostgresBudgetStore({ connectionString: "postgres://x@localhost/x" }).reserve !== "function") throw new Error("createStore");`,
  "@bulkhead/budget": `if (api.createTokenCounter({ encoding: "o200k_base" }).count("hello world") !== 2) throw new Error("tiktoken did not load from the tarball");`,
  "@bulkhead/gateway": `{ const gateway = await api.createGateway({ env: {} }); const answer = await fetch(gateway.url + "/v1/nope", { method: "POST" }); await gateway.close(); if (answer.status !== 404) throw new Error("the gateway did not answer from the tarball"); }`,
  "@bulkhead/memory": `if (api.parseMemoryEntry(api.renderMemoryEntry({ id: "m-abc", kind: "convention", status: "accepted", title: "t", body: "", applies: "workspace", source: { kind: "person", ref: "p" }, createdAt: "2026-12-01T00:00:00.000Z", updatedAt: "2026-12-01T00:00:00.000Z" })).title !== "t") throw new Error("memory entry round trip");`,
};

const failures = [];
const check = (name, ok, message) => {
  if (!ok) failures.push(`${name}: ${message}`);
};

const work = mkdtempSync(join(tmpdir(), "bulkhead-check-packages-"));
try {
  const tarballs = [];
  for (const { dir, manifest } of packages) {
    console.error(`[check:packages] ${manifest.name}: publint, attw, pack`);
    run("npx", ["publint", "run", dir, "--strict", "--pack", "npm"], { cwd: root });
    run("npx", ["attw", "--pack", dir, "--profile", "esm-only", "--format", "ascii"], { cwd: root });
    const packed = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", work], { cwd: dir }))[0];
    tarballs.push(join(work, packed.filename));
    const shipped = new Set(packed.files.map((file) => file.path));
    const targets = [manifest.main, manifest.types, ...Object.values(manifest.bin ?? {}), ...collectTargets(manifest.exports)].filter(
      Boolean,
    );
    for (const target of new Set(targets.map((target) => target.replace(/^\.\//, "")))) {
      check(manifest.name, shipped.has(target), `exports/main/bin name ${target}, which is not in the tarball`);
    }
  }

  const project = join(work, "project");
  run("mkdir", ["-p", project]);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "bulkhead-consumer", private: true, type: "module" }));
  console.error(`[check:packages] installing ${tarballs.length} tarballs into an empty project`);
  run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", ...tarballs], { cwd: project });

  for (const { dir, manifest } of packages) {
    const expected = Object.keys(await import(pathToFileURL(join(dir, "dist", "index.js")).href)).sort();
    const probe = join(project, `probe-${manifest.name.split("/")[1]}.mjs`);
    writeFileSync(
      probe,
      [
        `import * as api from ${JSON.stringify(manifest.name)};`,
        `import { createRequire } from "node:module";`,
        `const require = createRequire(import.meta.url);`,
        `const subpaths = ${JSON.stringify(Object.keys(manifest.exports).filter((key) => key !== "."))};`,
        `for (const subpath of subpaths) require.resolve(${JSON.stringify(manifest.name)} + subpath.slice(1));`,
        smoke[manifest.name] ?? "",
        `process.stdout.write(JSON.stringify(Object.keys(api).sort()));`,
      ].join("\n"),
    );
    const actual = JSON.parse(run("node", [probe], { cwd: project }));
    const missing = expected.filter((name) => !actual.includes(name));
    check(manifest.name, missing.length === 0, `the installed tarball lacks exports: ${missing.join(", ")}`);
    check(manifest.name, actual.length > 0, "the installed tarball exports nothing");
    for (const bin of Object.keys(manifest.bin ?? {})) {
      const version = run(join(project, "node_modules", ".bin", bin), ["--version"], { cwd: project }).trim();
      check(manifest.name, version === manifest.version, `bin ${bin} --version printed "${version}", expected ${manifest.version}`);
    }
    console.error(`[check:packages] ${manifest.name}: ${actual.length} exports import from the tarball`);
  }

  await checkAdapterConsumers(project);
} finally {
  rmSync(work, { recursive: true, force: true });
}

/**
 * The adapters as a user meets them: the SDKs at the versions budget is tested with, installed
 * beside the budget tarball without --legacy-peer-deps (ai@7 pins @ai-sdk/provider 4), and every
 * TypeScript snippet of docs/adapters.md plus a file of type assertions compiled against them.
 */
async function checkAdapterConsumers(project) {
  const budgetManifest = JSON.parse(readFileSync(join(root, "packages", "budget", "package.json"), "utf8"));
  const rootManifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const sdks = ["ai", "@anthropic-ai/sdk", "openai", "@anthropic-ai/claude-agent-sdk"].map(
    (name) => `${name}@${budgetManifest.devDependencies[name]}`,
  );
  console.error(`[check:packages] installing ${sdks.join(", ")} beside @bulkhead/budget (no --legacy-peer-deps)`);
  // --omit=optional: the Agent SDK's Claude Code binary is not needed to type-check.
  run(
    "npm",
    [
      "install",
      "--no-audit",
      "--no-fund",
      "--prefer-offline",
      "--omit=optional",
      ...sdks,
      `@types/node@${rootManifest.devDependencies["@types/node"]}`,
    ],
    { cwd: project },
  );
  const docs = readFileSync(join(root, "docs", "adapters.md"), "utf8");
  const snippets = [...docs.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]);
  check("docs/adapters.md", snippets.length >= 6, `expected a snippet per adapter, found ${snippets.length}`);
  snippets.forEach((snippet, index) => {
    const lines = snippet.trimEnd().split("\n").length;
    check("docs/adapters.md", lines <= 10, `snippet ${index + 1} is ${lines} lines, over the ten the page promises`);
    writeFileSync(join(project, `adapter-snippet-${index + 1}.ts`), snippet);
  });
  writeFileSync(
    join(project, "adapter-globals.d.ts"),
    'declare const budget: import("@bulkhead/budget").Budget;\ndeclare const tracker: import("@bulkhead/budget").Tracker;\n',
  );
  writeFileSync(
    join(project, "adapter-types.ts"),
    [
      'import Anthropic from "@anthropic-ai/sdk";',
      'import type { LanguageModelV4Middleware } from "@ai-sdk/provider";',
      'import { budgetHooks, budgetMiddleware, meterAgentSdk, meterAnthropic, meterOpenAI, type ClaudeCodeStreamResult } from "@bulkhead/budget";',
      'import { query, type Options, type SDKMessage } from "@anthropic-ai/claude-agent-sdk";',
      'import OpenAI from "openai";',
      "// The real client types in and out, the middleware type of ai@7, the hooks type of the Agent SDK.",
      "const anthropic: Anthropic = meterAnthropic(new Anthropic(), { budget });",
      "void anthropic.messages.countTokens;",
      "void anthropic.beta.messages.stream;",
      "const openai: OpenAI = meterOpenAI(new OpenAI(), { budget });",
      "void openai.responses.create;",
      "const middleware: LanguageModelV4Middleware = budgetMiddleware({ budget });",
      "void middleware;",
      'const hooks: Options["hooks"] = budgetHooks({ budget });',
      'const run = meterAgentSdk(query({ prompt: "x", options: { hooks } }), { budget });',
      "void run.interrupt;",
      "const metered: ClaudeCodeStreamResult = run.metered;",
      "void metered;",
      "export async function first(): Promise<SDKMessage | undefined> {",
      "  for await (const message of run) return message;",
      "  return undefined;",
      "}",
    ].join("\n"),
  );
  writeFileSync(
    join(project, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: "es2023",
        module: "nodenext",
        moduleResolution: "nodenext",
        types: ["node"],
        skipLibCheck: true,
      },
      include: ["adapter-*.ts"],
    }),
  );
  const tsc = spawnSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", project], {
    cwd: project,
    encoding: "utf8",
  });
  check("adapters", tsc.status === 0, `the adapter consumer files do not type-check:\n${tsc.stdout}${tsc.stderr}`);
  console.error(`[check:packages] adapters: ${snippets.length} doc snippets and the type assertions compile against the real SDKs`);
}

function collectTargets(exports) {
  if (typeof exports === "string") return [exports];
  if (!exports || typeof exports !== "object") return [];
  return Object.values(exports).flatMap(collectTargets);
}

if (failures.length > 0) {
  console.error(`[check:packages] ${failures.length} problem(s):\n- ${failures.join("\n- ")}`);
  process.exit(1);
}
console.error(`[check:packages] ${packages.length} packages ok`);

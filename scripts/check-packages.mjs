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
  "@bulkhead/budget": `if (api.createTokenCounter({ encoding: "o200k_base" }).count("hello world") !== 2) throw new Error("tiktoken did not load from the tarball");`,
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
} finally {
  rmSync(work, { recursive: true, force: true });
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

import { readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

// docs/architecture.md states the arrows between packages in one table; this test holds the table,
// every package.json and every import in the packages' sources to the same facts.
const root = join(import.meta.dirname, "..", "..", "..");
const names = readdirSync(join(root, "packages")).sort();

interface Row {
  bulkhead: string[];
  other: string[];
  peer: string[];
}

/** The dependency table of docs/architecture.md: one row per `@bulkhead/<name>`. */
export function parseArchitectureTable(markdown: string): Map<string, Row> {
  const list = (cell: string) =>
    cell
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item !== "" && item !== "—")
      .sort();
  const rows = new Map<string, Row>();
  for (const line of markdown.split("\n")) {
    const cells = /^\|\s*`@bulkhead\/([a-z-]+)`\s*\|([^|]*)\|([^|]*)\|([^|]*)\|\s*$/.exec(line);
    if (!cells) continue;
    rows.set(cells[1]!, { bulkhead: list(cells[2]!), other: list(cells[3]!), peer: list(cells[4]!) });
  }
  return rows;
}

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

function manifestRow(manifest: Manifest): Row {
  const dependencies = Object.keys(manifest.dependencies ?? {});
  return {
    bulkhead: dependencies
      .filter((name) => name.startsWith("@bulkhead/"))
      .map((name) => name.slice("@bulkhead/".length))
      .sort(),
    other: dependencies.filter((name) => !name.startsWith("@bulkhead/")).sort(),
    peer: Object.keys(manifest.peerDependencies ?? {}).sort(),
  };
}

/** The packages a package's non-test sources import (`import`, `export ... from`, `import()`, `require()`), by package name. */
function importedPackages(dir: string): string[] {
  const found = new Set<string>();
  const walk = (current: string) => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts")) {
        const text = readFileSync(path, "utf8");
        for (const match of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^import\s+)"([^"\s]+)"/gm)) {
          const specifier = match[1]!;
          if (specifier.startsWith(".") || specifier.startsWith("node:") || builtinModules.includes(specifier)) continue;
          const parts = specifier.split("/");
          found.add(specifier.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]!);
        }
      }
    }
  };
  walk(join(dir, "src"));
  return [...found].sort();
}

const table = parseArchitectureTable(readFileSync(join(root, "docs", "architecture.md"), "utf8"));

describe("docs/architecture.md states the real arrows", () => {
  it("has one row per package, and no row for a package that does not exist", () => {
    expect([...table.keys()].sort()).toEqual(names);
  });

  it.each(names)("@bulkhead/%s: the table's row is its package.json", (name) => {
    const manifest = JSON.parse(readFileSync(join(root, "packages", name, "package.json"), "utf8")) as Manifest;
    expect(manifest.name).toBe(`@bulkhead/${name}`);
    expect(table.get(name), `docs/architecture.md has no row for @bulkhead/${name}`).toEqual(manifestRow(manifest));
  });

  it.each(names)("@bulkhead/%s: its sources import exactly its dependencies (optional peers may be structural only)", (name) => {
    const row = table.get(name)!;
    const declared = [...row.bulkhead.map((dependency) => `@bulkhead/${dependency}`), ...row.other].sort();
    const imported = importedPackages(join(root, "packages", name));
    // Every import is declared, and every declared dependency is used: a dependency nobody imports
    // is a false arrow too.
    expect(imported.filter((dependency) => !row.peer.includes(dependency))).toEqual(declared);
  });

  it("every package depends on core, and the middle packages on core alone", () => {
    for (const name of names.filter((name) => name !== "core")) expect(table.get(name)!.bulkhead).toContain("core");
    for (const name of ["sandbox", "budget", "handover", "git-lead"]) expect(table.get(name)!.bulkhead).toEqual(["core"]);
    expect(table.get("core")!.bulkhead).toEqual([]);
  });

  it("reads a row, and tells a changed arrow from the real one", () => {
    const parsed = parseArchitectureTable(
      "| `@bulkhead/handover` | core | yaml, zod | — |\n| `@bulkhead/x` | budget, core | — | a |\n| not a row |",
    );
    expect(parsed.get("handover")).toEqual({ bulkhead: ["core"], other: ["yaml", "zod"], peer: [] });
    expect(parsed.get("x")).toEqual({ bulkhead: ["budget", "core"], other: [], peer: ["a"] });
    // The old text said handover depends on yaml: that row differs from handover's package.json.
    expect(parsed.get("handover")).not.toEqual(
      manifestRow({ name: "@bulkhead/handover", dependencies: { "@bulkhead/core": "0", zod: "4" } }),
    );
  });
});

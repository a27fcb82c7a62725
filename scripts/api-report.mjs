// `npm run api:check` (part of `npm run lint`) and `npm run api:update`: the public API of each
// package, as the TypeScript compiler sees its src/index.ts (and each subpath entry of its exports map), written to packages/<name>/api.txt.
// A report lists every exported name with its kind, and for a class its public members; anything
// tagged `@internal` is left out, as the build strips it from the published types (stripInternal).
// The check fails when a report differs from the sources, so a new or lost export is a reviewed
// change of api.txt, never an accident.
import { readdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import ts from "typescript";

const root = resolve(import.meta.dirname, "..");
const packages = readdirSync(join(root, "packages"))
  .filter((name) => existsSync(join(root, "packages", name, "src", "index.ts")))
  .sort();

const config = ts.getParsedCommandLineOfConfigFile(
  join(root, "tsconfig.check.json"),
  {},
  { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} },
);
const options = {
  ...config.options,
  noEmit: true,
  paths: Object.fromEntries(packages.map((name) => [`@bulkhead/${name}`, [join(root, "packages", name, "src", "index.ts")]])),
};

/**
 * A package's subpath entries (`"./scope": { types: "./dist/scope.d.ts" }`) and their sources
 * (`src/scope.ts`): published entries too, so their exports are reviewed like the main one's.
 */
function subpathsOf(name) {
  const manifest = JSON.parse(readFileSync(join(root, "packages", name, "package.json"), "utf8"));
  return Object.entries(manifest.exports ?? {})
    .filter(([subpath, target]) => subpath !== "." && typeof target?.types === "string")
    .map(([subpath, target]) => ({
      specifier: `@bulkhead/${name}${subpath.slice(1)}`,
      source: join(root, "packages", name, target.types.replace(/^\.\/dist\//, "src/").replace(/\.d\.ts$/, ".ts")),
    }))
    .filter(({ source }) => existsSync(source))
    .sort((left, right) => left.specifier.localeCompare(right.specifier));
}

const isInternal = (node) => ts.getJSDocTags(node).some((tag) => tag.tagName.text === "internal");

function kindsOf(symbol) {
  const flags = symbol.flags;
  const kinds = [];
  if (flags & ts.SymbolFlags.Class) kinds.push("class");
  else if (flags & ts.SymbolFlags.Function) kinds.push("function");
  else if (flags & ts.SymbolFlags.Enum) kinds.push("enum");
  else if (flags & ts.SymbolFlags.Variable) {
    const declaration = symbol.valueDeclaration;
    const list = declaration && ts.isVariableDeclaration(declaration) ? declaration.parent : undefined;
    kinds.push(list && list.flags & ts.NodeFlags.Const ? "const" : "let");
  }
  if (flags & ts.SymbolFlags.Interface) kinds.push("interface");
  if (flags & ts.SymbolFlags.TypeAlias) kinds.push("type");
  if (flags & (ts.SymbolFlags.ValueModule | ts.SymbolFlags.NamespaceModule)) kinds.push("namespace");
  return kinds.length > 0 ? kinds : ["unknown"];
}

/** The public members of a class declaration: no `#private`, `private`, `protected` or `@internal` ones. */
function classMembers(declaration) {
  const members = [];
  for (const member of declaration.members) {
    if (ts.isConstructorDeclaration(member)) {
      const hidden = ts.getCombinedModifierFlags(member) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected);
      if (!hidden && !isInternal(member)) members.push("constructor");
      // Parameter properties (`constructor(readonly id: string)`) are members too.
      for (const parameter of member.parameters) {
        const flags = ts.getCombinedModifierFlags(parameter);
        const declared = flags & (ts.ModifierFlags.Public | ts.ModifierFlags.Readonly);
        if (declared && !(flags & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) && ts.isIdentifier(parameter.name))
          members.push(`property ${parameter.name.text}`);
      }
      continue;
    }
    if (!member.name || ts.isPrivateIdentifier(member.name)) continue;
    const modifiers = ts.getCombinedModifierFlags(member);
    if (modifiers & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected) || isInternal(member)) continue;
    const name = ts.isComputedPropertyName(member.name) ? `[${member.name.expression.getText()}]` : member.name.getText();
    const kind = ts.isMethodDeclaration(member) ? "method" : ts.isGetAccessor(member) || ts.isSetAccessor(member) ? "accessor" : "property";
    members.push(`${modifiers & ts.ModifierFlags.Static ? "static " : ""}${kind} ${name}`);
  }
  return [...new Set(members)].sort();
}

/** The report text of every package, by name. */
export function apiReports() {
  const subpathsByName = new Map(packages.map((name) => [name, subpathsOf(name)]));
  const entries = (name) => [join(root, "packages", name, "src", "index.ts"), ...subpathsByName.get(name).map(({ source }) => source)];
  const program = ts.createProgram({ rootNames: packages.flatMap(entries), options });
  const checker = program.getTypeChecker();
  const reports = new Map();
  for (const name of packages) {
    const subpaths = subpathsByName.get(name);
    const lines = [
      `# The public API of @bulkhead/${name}: every export of src/index.ts${subpaths.length > 0 ? " and of each subpath entry" : ""}, with its kind.`,
      "# Generated by `npm run api:update`; `npm run lint` fails when it differs from the sources.",
      "",
    ];
    const report = (file) => {
      const module = checker.getSymbolAtLocation(program.getSourceFile(file));
      const exports = module ? checker.getExportsOfModule(module) : [];
      for (const exported of [...exports].sort((left, right) => left.name.localeCompare(right.name))) {
        const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
        const declarations = symbol.declarations ?? [];
        if (declarations.length > 0 && declarations.every(isInternal)) continue;
        lines.push(`${kindsOf(symbol).join(" + ")} ${exported.name}`);
        const declaration = declarations.find((node) => ts.isClassDeclaration(node));
        if (declaration) for (const member of classMembers(declaration)) lines.push(`  ${member}`);
      }
    };
    report(join(root, "packages", name, "src", "index.ts"));
    for (const { specifier, source } of subpaths) {
      lines.push("", `# ${specifier} (${source.slice(join(root, "packages", name).length + 1)})`, "");
      report(source);
    }
    reports.set(name, `${lines.join("\n")}\n`);
  }
  return reports;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const update = process.argv.includes("--update");
  const stale = [];
  for (const [name, text] of apiReports()) {
    const path = join(root, "packages", name, "api.txt");
    const current = existsSync(path) ? readFileSync(path, "utf8") : undefined;
    if (current === text) continue;
    if (update) {
      writeFileSync(path, text);
      console.error(`api-report: wrote packages/${name}/api.txt`);
      continue;
    }
    const before = new Set((current ?? "").split("\n"));
    const after = new Set(text.split("\n"));
    const added = [...after].filter((line) => line && !before.has(line)).map((line) => `    + ${line}`);
    const removed = [...before].filter((line) => line && !after.has(line)).map((line) => `    - ${line}`);
    stale.push(`  packages/${name}/api.txt${current === undefined ? " (missing)" : ""}\n${[...added, ...removed].join("\n")}`);
  }
  if (stale.length > 0) {
    console.error(`api-report: the public API differs from the committed report:\n${stale.join("\n")}`);
    console.error(
      "\nIf the change is meant (a new export, a removed one), run `npm run api:update` and commit the api.txt files; if not, fix src/index.ts (or tag the member @internal).",
    );
    process.exitCode = 1;
  } else if (!update) console.error(`api-report: the public API of ${packages.length} packages matches packages/*/api.txt.`);
}

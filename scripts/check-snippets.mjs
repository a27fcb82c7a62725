// `npm run check:snippets` (part of `npm run lint`): every ```ts / ```typescript block in README.md,
// packages/*/README.md and docs/*.md is type-checked, each as its own ES module, against the
// workspace packages' sources (`@bulkhead/<name>` → packages/<name>/src/index.ts, so no build is
// needed and a stale dist cannot hide an error). An error names the Markdown file and line.
//
// A block that continues the text around it (it uses a `session` or a `spec` made earlier) states
// what it assumes in an HTML comment right above the fence, which Markdown does not render:
//   <!-- snippet-context: import type { Session } from "@bulkhead/sandbox"; declare const session: Session; -->
// The context is compiled before the block, so the block is checked against the real types.
// Opt-out, for a block that is deliberately not a program (a signature, pseudo-code): write
// `no-check` after the language, as in ```ts no-check, and say why in the text around it.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import ts from "typescript";

const root = resolve(import.meta.dirname, "..");

/** The Markdown files whose snippets are checked, relative to the root. */
export function snippetFiles() {
  const list = (dir, filter) =>
    readdirSync(join(root, dir), { withFileTypes: true })
      .filter(filter)
      .map((entry) => join(dir, entry.name));
  return [
    "README.md",
    ...list("packages", (entry) => entry.isDirectory())
      .map((dir) => join(dir, "README.md"))
      .filter((file) => {
        try {
          return readFileSync(join(root, file)) !== undefined;
        } catch {
          return false;
        }
      }),
    ...list("docs", (entry) => entry.isFile() && entry.name.endsWith(".md")),
  ].sort();
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*(\S*)\s*(.*)$/;

/**
 * The TypeScript blocks of one Markdown text: `{ line, code, skip }`, `line` being the 1-based
 * line of the block's first code line. Linear in the text.
 */
export function extractSnippets(text) {
  const lines = text.split("\n");
  const snippets = [];
  for (let index = 0; index < lines.length; index++) {
    const open = FENCE.exec(lines[index]);
    if (!open) continue;
    const [, indent, fence, language, rest] = open;
    const body = [];
    let end = index + 1;
    for (; end < lines.length; end++) {
      const close = FENCE.exec(lines[end]);
      if (close && close[2].startsWith(fence[0]) && close[2].length >= fence.length && close[3] === "") break;
      body.push(lines[end].startsWith(indent) ? lines[end].slice(indent.length) : lines[end]);
    }
    if (language === "ts" || language === "typescript")
      snippets.push({ line: index + 2, code: body.join("\n"), skip: /\bno-check\b/.test(rest), context: contextAbove(lines, index) });
    index = end;
  }
  return snippets;
}

const CONTEXT = /<!--\s*snippet-context:([\s\S]*?)-->\s*$/;

/** The `<!-- snippet-context: ... -->` comment that ends right above line `fence` (blank lines allowed), or "". */
function contextAbove(lines, fence) {
  let end = fence - 1;
  while (end >= 0 && lines[end].trim() === "") end--;
  if (end < 0 || !lines[end].trimEnd().endsWith("-->")) return "";
  // At most 20 lines up, so a page without the marker stays linear.
  for (let start = end; start >= Math.max(0, end - 20); start--) {
    if (!lines[start].includes("<!--")) continue;
    const match = CONTEXT.exec(lines.slice(start, end + 1).join("\n"));
    return match ? match[1].trim() : "";
  }
  return "";
}

const config = ts.getParsedCommandLineOfConfigFile(
  join(root, "tsconfig.check.json"),
  {},
  { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} },
);
const packages = readdirSync(join(root, "packages")).filter((name) => {
  try {
    return readFileSync(join(root, "packages", name, "src", "index.ts")) !== undefined;
  } catch {
    return false;
  }
});
const options = {
  ...config.options,
  noEmit: true,
  // Unused names are normal in a snippet that shows one call.
  noUnusedLocals: false,
  noUnusedParameters: false,
  paths: Object.fromEntries(packages.map((name) => [`@bulkhead/${name}`, [join(root, "packages", name, "src", "index.ts")]])),
};

/** Type-checks the snippets and returns the error lines (empty when all compile). */
export function checkSnippets(files = snippetFiles()) {
  const virtual = new Map();
  for (const file of files) {
    for (const snippet of extractSnippets(readFileSync(join(root, file), "utf8"))) {
      if (snippet.skip) continue;
      // Beside the Markdown file, so relative imports and the root package.json ("type": "module") apply;
      // `export {}` makes the block a module (top-level await, its own scope) without moving its lines.
      const path = join(root, `${file}.L${snippet.line}.snippet.ts`);
      // The context goes on the first line, before the code, so the block's own lines keep their numbers.
      const context = snippet.context.replace(/\s*\n\s*/g, " ");
      const prefix = context ? `${context} ` : "";
      virtual.set(path, { file, line: snippet.line, prefix: prefix.length, text: `${prefix}${snippet.code}\nexport {};\n` });
    }
  }
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.readFile = (path) => virtual.get(path)?.text ?? readFile(path);
  host.fileExists = (path) => virtual.has(path) || fileExists(path);
  host.getSourceFile = (path, language, ...rest) => {
    const entry = virtual.get(path);
    return entry ? ts.createSourceFile(path, entry.text, language, true) : getSourceFile(path, language, ...rest);
  };
  const program = ts.createProgram({ rootNames: [...virtual.keys()], options, host });
  const errors = [];
  for (const [path, entry] of virtual) {
    const source = program.getSourceFile(path);
    const diagnostics = [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)];
    for (const diagnostic of diagnostics) {
      const { line, character } = ts.getLineAndCharacterOfPosition(source, diagnostic.start ?? 0);
      const code = (entry.text.split("\n")[line] ?? "").slice(line === 0 ? entry.prefix : 0).trim();
      const where =
        line === 0 && character < entry.prefix
          ? `${entry.file}:${entry.line - 1} (snippet-context)`
          : `${entry.file}:${entry.line + line}:${character + 1 - (line === 0 ? entry.prefix : 0)}`;
      errors.push(`${where} - error TS${diagnostic.code}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n")}\n    ${code}`);
    }
  }
  return { errors, checked: virtual.size };
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const files = process.argv.slice(2).length > 0 ? process.argv.slice(2).map((file) => relative(root, resolve(file))) : snippetFiles();
  const { errors, checked } = checkSnippets(files);
  if (errors.length > 0) {
    console.error(errors.join("\n"));
    console.error(
      `\ncheck-snippets: ${errors.length} error(s) in the TypeScript blocks of the docs. Fix the snippet (or the API), or mark a block that is deliberately a fragment with \`\`\`ts no-check (docs/contributing.md).`,
    );
    process.exitCode = 1;
  } else console.error(`check-snippets: ${checked} TypeScript block(s) in ${files.length} file(s) compile.`);
}

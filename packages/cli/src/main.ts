import { BulkheadError, loadTaskSpec, resolveScope } from "@bulkhead/core";

export interface MainOptions {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
}

const USAGE = `bulkhead: primitives for running coding agents across repositories

Usage:
  bulkhead scope resolve <spec> --repo <name>=<dir> ... [--json]
  bulkhead --version

Example:
  bulkhead scope resolve handover.yaml --repo backend-api=../backend-api --json

Exit codes: 0 ok, 1 failure, 2 refused by a limit or a guard.`;

/** Runs the CLI with `argv` (without `node` and the script) and returns the exit code. */
export async function main(
  argv: readonly string[],
  { stdout = (text) => process.stdout.write(text), stderr = (text) => process.stderr.write(text) }: MainOptions = {},
): Promise<number> {
  const json = argv.includes("--json");
  const args = argv.filter((arg) => arg !== "--json");
  if (args.includes("--version")) {
    stdout("0.1.0\n");
    return 0;
  }
  if (args[0] === "scope" && args[1] === "resolve" && args[2] && !args.includes("--help")) {
    try {
      const repos: Record<string, string> = {};
      args.forEach((arg, index) => {
        if (arg !== "--repo") return;
        const [name, dir] = (args[index + 1] ?? "").split("=");
        if (name && dir) repos[name] = dir;
      });
      const spec = await loadTaskSpec(args[2]);
      const scope = await resolveScope(spec, { repos });
      const result = {
        files: scope.files,
        totals: scope.totals,
        estimated: scope.estimated,
        violations: scope.violations,
        skipped: scope.skipped,
        refused: scope.refused,
      };
      if (json) stdout(`${JSON.stringify(result)}\n`);
      else {
        for (const file of scope.files) stdout(`${file.repo}/${file.path}  ${file.tokens} tokens\n`);
        stdout(`${scope.totals.files} files, ${scope.totals.tokens} tokens${scope.estimated ? " (estimated)" : ""}\n`);
        for (const violation of scope.violations) stderr(`${violation.message}\n`);
      }
      return scope.violations.length > 0 ? 2 : 0;
    } catch (error) {
      const body = BulkheadError.isInstance(error) ? error.toJSON() : { message: String(error) };
      if (json) stdout(`${JSON.stringify({ error: body })}\n`);
      else stderr(`${body.message}\n`);
      return 1;
    }
  }
  (args.length === 0 || args.includes("--help") ? stdout : stderr)(`${USAGE}\n`);
  return args.length === 0 || args.includes("--help") ? 0 : 1;
}

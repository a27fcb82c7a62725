import { UsageError } from "./command.js";

/** `--repo name=dir` flags as a map; a name given twice, or a value without "=", is wrong usage naming the flag. */
export function repoMap(values: readonly string[] | undefined, flag = "--repo"): Record<string, string> {
  const repos: Record<string, string> = {};
  for (const value of values ?? []) {
    // Split at the first "=" only: a directory may contain one.
    const at = value.indexOf("=");
    const [name, dir] = at === -1 ? [value, ""] : [value.slice(0, at), value.slice(at + 1)];
    if (!name || !dir) throw new UsageError(`${flag}: expected <name>=<value>, got "${value}"`);
    if (name in repos) throw new UsageError(`${flag}: "${name}" is given twice (${repos[name]} and ${dir}): give each repo once`);
    repos[name] = dir;
  }
  return repos;
}

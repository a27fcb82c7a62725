import { lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";

/**
 * The host disk a tree uses: the allocated blocks (`st_blocks`, so a sparse file counts what it
 * really takes) of every distinct inode under `root`, each counted once (hard links), walked
 * without following a link and with a set of visited directories, so no link or loop leads the
 * walk out of the tree or round it twice. Entries that vanish during the walk are skipped.
 */
export function diskUsage(root: string): { bytes: number; entries: number } {
  const seen = new Set<string>();
  const stack = [root];
  let bytes = 0;
  let entries = 0;
  while (stack.length > 0) {
    const path = stack.pop()!;
    let stat;
    try {
      stat = lstatSync(path, { bigint: false });
    } catch {
      continue;
    }
    // Only an inode with several names can be met twice.
    if (stat.nlink > 1) {
      const key = `${stat.dev}:${stat.ino}`;
      if (seen.has(key)) continue;
      seen.add(key);
    }
    entries++;
    bytes += stat.blocks * 512;
    if (!stat.isDirectory()) continue;
    let names: string[];
    try {
      names = readdirSync(path);
    } catch {
      continue;
    }
    for (const name of names) stack.push(join(path, name));
  }
  return { bytes, entries };
}

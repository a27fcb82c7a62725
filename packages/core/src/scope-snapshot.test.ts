import { mkdirSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createTempDir, git } from "@bulkhead/test-utils";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseTaskSpec } from "./parse-task-spec.js";
import { resolveScope } from "./resolve-scope.js";
import { createScopeCache } from "./scope-cache.js";
import type { TokenCounter } from "./token-counter.js";

const spec = parseTaskSpec(
  JSON.stringify({
    task: "t",
    context_scope: { repos: [{ name: "repo", paths: ["."] }], max_files: 10_000, max_tokens: 10_000_000 },
    ownership: { primary_repo: "repo" },
  }),
);

/** Counts words, and how many texts it was asked to count. */
function wordCounter(): TokenCounter & { texts: number } {
  const counter = {
    name: "words",
    estimated: false,
    texts: 0,
    count(text: string) {
      counter.texts++;
      return text.split(/\s+/).filter(Boolean).length;
    },
  };
  return counter;
}

/** What a resolve found, without its functions. */
const found = (scope: Awaited<ReturnType<typeof resolveScope>>) => ({
  files: scope.files,
  skipped: scope.skipped,
  links: scope.links,
  refused: scope.refused,
  totals: scope.totals,
});

// Each change moves what it touched to a new, unique time, as any real change does: these tests
// are about what a change is, not about file system clocks (a change inside one clock tick is the
// "racily clean" case, which the persistent cache guards against by not writing such entries).
let clock = 1_600_000_000;
const touch = (...paths: string[]) => {
  clock += 10;
  for (const path of paths) utimesSync(path, clock, clock);
};

type Change = (root: string) => void;
const changes: Record<string, Change> = {
  "edit a file, same size": (root) => {
    writeFileSync(join(root, "src/a.ts"), "const b = 1;\n");
    touch(join(root, "src/a.ts"));
  },
  "edit a file, more words": (root) => {
    writeFileSync(join(root, "src/a.ts"), "const a = 1; const c = 2;\n");
    touch(join(root, "src/a.ts"));
  },
  "add a file": (root) => {
    writeFileSync(join(root, "src/deep/new.ts"), "new file here\n");
    touch(join(root, "src/deep/new.ts"), join(root, "src/deep"));
  },
  "remove a file": (root) => {
    rmSync(join(root, "src/b.ts"), { force: true, recursive: true });
    touch(join(root, "src"));
  },
  "ignore a file in .gitignore": (root) => {
    writeFileSync(join(root, ".gitignore"), "*.log\nb.ts\n");
    touch(join(root, ".gitignore"));
  },
  "un-ignore the logs": (root) => {
    writeFileSync(join(root, ".gitignore"), "");
    touch(join(root, ".gitignore"));
  },
  "add .git/info/exclude": (root) => {
    mkdirSync(join(root, ".git/info"), { recursive: true });
    writeFileSync(join(root, ".git/info/exclude"), "src/deep/\n");
    touch(join(root, ".git/info/exclude"), join(root, ".git/info"));
  },
  "point the link elsewhere": (root) => {
    unlinkSync(join(root, "link"));
    symlinkSync("src/deep", join(root, "link"));
    touch(join(root));
  },
  "mend the broken link": (root) => {
    writeFileSync(join(root, "missing.ts"), "now here\n");
    touch(join(root, "missing.ts"), root);
  },
  "make the binary file text": (root) => {
    writeFileSync(join(root, "bin.dat"), "text now\n");
    touch(join(root, "bin.dat"));
  },
  "replace a file by a directory": (root) => {
    rmSync(join(root, "src/b.ts"), { force: true, recursive: true });
    mkdirSync(join(root, "src/b.ts"), { recursive: true });
    writeFileSync(join(root, "src/b.ts/inner.ts"), "inner\n");
    touch(join(root, "src/b.ts/inner.ts"), join(root, "src/b.ts"), join(root, "src"));
  },
};

function makeTree(root: string): void {
  git(dirname(root), ["init", "--quiet", root]);
  const files: Record<string, string | Uint8Array> = {
    ".gitignore": "*.log\n",
    "src/a.ts": "const a = 1;\n",
    "src/b.ts": "export const b = 2;\n",
    "src/deep/c.ts": "one two three\n",
    "debug.log": "ignored\n",
    "bin.dat": new Uint8Array([1, 0, 2]),
  };
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  symlinkSync("src", join(root, "link"));
  symlinkSync("missing.ts", join(root, "dangling"));
  touch(...Object.keys(files).map((path) => join(root, path)));
}

describe("resolving again over an unchanged tree (the walk snapshot)", () => {
  it("answers as a fresh resolve does, and counts nothing again", async () => {
    const temp = createTempDir();
    try {
      const root = join(temp.path, "repo");
      makeTree(root);
      const cache = createScopeCache();
      const counter = wordCounter();
      const first = await resolveScope(spec, { repos: { repo: root }, counter, cache });
      expect(first.links.map((link) => link.path)).toEqual(["link"]);
      expect(first.skipped.map((entry) => [entry.path, entry.reason])).toEqual([
        ["bin.dat", "binary"],
        ["dangling", "broken-symlink"],
      ]);
      const counted = counter.texts;
      const again = await resolveScope(spec, { repos: { repo: root }, counter, cache });
      expect(counter.texts).toBe(counted);
      expect(found(again)).toEqual(found(first));
      // The results are copies: changing one does not change the next.
      again.files[0]!.tokens = -1;
      const third = await resolveScope(spec, { repos: { repo: root }, counter, cache });
      expect(found(third)).toEqual(found(first));
      expect(third.canRead("repo", "link/a.ts")).toBe(first.canRead("repo", "link/a.ts"));
    } finally {
      temp.remove();
    }
  });

  it("property: after any sequence of changes, a cached resolve equals a fresh one", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom(...Object.keys(changes)), { minLength: 1, maxLength: 6 }), async (sequence) => {
        const temp = createTempDir();
        try {
          const root = join(temp.path, "repo");
          makeTree(root);
          const cache = createScopeCache();
          await resolveScope(spec, { repos: { repo: root }, counter: wordCounter(), cache });
          for (const name of sequence) {
            changes[name]!(root);
            const cached = await resolveScope(spec, { repos: { repo: root }, counter: wordCounter(), cache });
            const fresh = await resolveScope(spec, { repos: { repo: root }, counter: wordCounter(), cache: false });
            expect({ after: name, ...found(cached) }).toEqual({ after: name, ...found(fresh) });
          }
        } finally {
          temp.remove();
        }
      }),
      { numRuns: 40 },
    );
  });
});

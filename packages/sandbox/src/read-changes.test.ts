// readRepoChanges against real git, without a container: random names (unicode, newlines,
// quotes, spaces) and random edits; the change set must be exactly the content difference, with
// the blob ids git itself computes.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createTempDir, git } from "@bulkhead/test-utils";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { blobId, compareBytes, readRepoChanges } from "./read-changes.js";

const name = fc
  .string({ unit: fc.constantFrom("a", "b", "é", "名", "\n", " ", '"', "\\", "-", "="), minLength: 1, maxLength: 5 })
  .filter((text) => text !== "." && text !== ".." && text !== ".git" && text !== ".gitignore");
const path = fc.array(name, { minLength: 1, maxLength: 3 }).map((parts) => parts.join("/"));

describe("readRepoChanges", () => {
  it("reports exactly the paths whose content differs from the base tree, with git's blob ids", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(path, { minLength: 1, maxLength: 8 }),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom("modify", "delete", "chmod", "link", "keep")), { maxLength: 8 }),
        fc.uniqueArray(path, { maxLength: 4 }),
        async (baseNames, edits, added) => {
          // A path may not be both a file and a directory.
          const files = baseNames.filter((one) => !baseNames.some((other) => other !== one && other.startsWith(`${one}/`)));
          await using dir = createTempDir();
          const source = join(dir.path, "source");
          const workspace = join(dir.path, "workspace");
          const write = (root: string, file: string, content: string) => {
            mkdirSync(dirname(join(root, file)), { recursive: true });
            writeFileSync(join(root, file), content);
          };
          mkdirSync(source);
          git(source, ["init", "--quiet", "--initial-branch=main"]);
          for (const file of files) write(source, file, `base ${file}\n`);
          git(source, ["add", "--all"]);
          git(source, ["commit", "--quiet", "-m", "base"]);
          const base = git(source, ["rev-parse", "HEAD"]);
          execFileSync("cp", ["-a", source, workspace]);
          rmSync(join(workspace, ".git"), { recursive: true, force: true });
          const expected = new Map<string, string>();
          for (const [index, edit] of edits) {
            const file = files[index % files.length]!;
            if (expected.has(file)) continue;
            if (edit === "modify") {
              writeFileSync(join(workspace, file), `changed ${file}\n`);
              expected.set(file, "modified 100644");
            } else if (edit === "delete") {
              rmSync(join(workspace, file));
              expected.set(file, "deleted -");
            } else if (edit === "chmod") {
              chmodSync(join(workspace, file), 0o755);
              expected.set(file, "modified 100755");
            } else if (edit === "link") {
              rmSync(join(workspace, file));
              symlinkSync("/etc/passwd", join(workspace, file));
              expected.set(file, "modified 120000");
            }
          }
          for (const file of added) {
            const clash = [...files, ...expected.keys()].some(
              (other) => other === file || other.startsWith(`${file}/`) || file.startsWith(`${other}/`),
            );
            if (clash) continue;
            write(workspace, file, `new ${file}\n`);
            expected.set(file, "added 100644");
          }
          const changes = await readRepoChanges({
            repo: "app",
            branch: "main",
            baseSha: base,
            source,
            workspace: dir.path,
            path: "workspace",
          });
          expect(changes.paths.map((change) => `${change.path}|${change.kind} ${change.entry?.mode ?? "-"}`)).toEqual(
            [...expected]
              .map(([file, what]) => `${file}|${what}`)
              .sort((left, right) => compareBytes(left.split("|")[0]!, right.split("|")[0]!)),
          );
          for (const change of changes.paths) {
            if (change.entry?.type === "file") {
              const oid = execFileSync("git", ["hash-object", "--no-filters", "--stdin"], {
                input: change.entry.bytes,
                encoding: "utf8",
              }).trim();
              expect(change.entry.oid).toBe(oid);
              expect(blobId(change.entry.bytes)).toBe(oid);
            }
            if (change.entry?.type === "link") expect(change.entry.target).toBe("/etc/passwd");
            if (change.base) expect(change.base.oid).toBe(git(source, ["rev-parse", `HEAD:${change.path}`]));
          }
          expect(changes.skipped).toEqual([{ path: ".git", reason: expect.stringContaining("is not a directory") }]);
        },
      ),
      { numRuns: 25 },
    );
  });

  it("refuses a repo directory that is a link", async () => {
    await using dir = createTempDir();
    const source = join(dir.path, "source");
    mkdirSync(source);
    git(source, ["init", "--quiet", "--initial-branch=main"]);
    writeFileSync(join(source, "a.txt"), "a\n");
    git(source, ["add", "--all"]);
    git(source, ["commit", "--quiet", "-m", "base"]);
    symlinkSync(source, join(dir.path, "linked"));
    await expect(
      readRepoChanges({
        repo: "app",
        branch: "main",
        baseSha: git(source, ["rev-parse", "HEAD"]),
        source,
        workspace: dir.path,
        path: "linked",
      }),
    ).rejects.toThrow("is not a directory (a link): it is never followed");
  });
});

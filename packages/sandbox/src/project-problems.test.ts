// The project loader's problems in the user's terms: the key, what was expected, what was there,
// and for `image` (a union zod only calls "Invalid input") the form meant and an example.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTempDir } from "@bulkhead/test-utils";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { defineProject, loadProject } from "./project-config.js";
import { InvalidProjectError } from "./sandbox-errors.js";

const base = { name: "app", repos: [{ name: "api", path: "/nonexistent/api" }] };

/** The problems defineProject reports for `input` (it must refuse it). */
function problemsOf(input: unknown): string[] {
  try {
    defineProject(input as never);
  } catch (error) {
    if (InvalidProjectError.isInstance(error)) return [...(error as InvalidProjectError).problems];
    throw error;
  }
  throw new Error("expected the project to be refused");
}

// zod's own wording, which says nothing a person can act on.
const ZOD_WORDING = /Invalid input|Invalid option|Invalid key in record|Unrecognized key|received|must match pattern|Too (small|big)/;

describe("project problems in the user's terms", () => {
  it("names the image form that was meant, what is wrong in it, and gives an example", () => {
    expect(problemsOf({ ...base, image: "node:20" })).toEqual([
      expect.stringMatching(
        /^image: expected a mapping, got the text "node:20"; for an image on this host write image: \{ existing: "node:20" \} \(e\.g\. /,
      ),
    ]);
    expect(problemsOf(base)).toEqual([
      expect.stringMatching(/^image: missing: say how the session's image is made, e\.g\. image: \{ existing: "node:20" \}/),
    ]);
    expect(problemsOf({ ...base, image: { exsting: "node:20" } })).toEqual([
      expect.stringMatching(
        /^image: "exsting" \(did you mean "existing"\?\) is not an image key; give existing, dockerfile or files, e\.g\. /,
      ),
    ]);
    expect(problemsOf({ ...base, image: { existing: 20 } })).toEqual(["image.existing: expected text, got the number 20"]);
    expect(problemsOf({ ...base, image: { existing: "node:20", dockerfile: "FROM x" } })).toEqual([
      "image: existing names a ready image and takes no other key (dockerfile): remove them, or build one with dockerfile",
    ]);
    expect(problemsOf({ ...base, image: { files: { a: "/bin/busybox" } } })).toEqual(["image.dockerfile: missing: expected text"]);
    expect(problemsOf({ ...base, image: { files: {}, dockerfile: "FROM x", tag: "Not A Tag" } })).toEqual([
      "image.tag: expected a lowercase image name and a tag, e.g. bulkhead-agent-claude-code:2.1.332-0123abcd",
    ]);
  });

  it("says what each other key expected and what it got, with a did-you-mean for unknown keys", () => {
    const problems = problemsOf({
      ...base,
      repos: [{ name: "api", path: "/x", mode: "rw" }],
      image: { existing: "node:20" },
      resources: { memoryMb: "1g" },
      env: { "A-B": "x" },
      mounts: [{ host: "/data", container: "/data", readonly: true }],
      netwrok: "none",
      security: { user: "root" },
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        'repos[0].mode: expected one of clone, mount-ro, got the text "rw"',
        'resources.memoryMb: expected a number, got the text "1g"',
        'env: the key "A-B" is not valid: expected an environment variable name',
        'mounts[0].readonly: not a key of mounts[0]; did you mean "readOnly"?',
        'netwrok: not a key of a project; did you mean "network"?',
        "security.user: expected a numeric uid or uid:gid, e.g. 1000:1000",
      ]),
    );
    expect(problems).toHaveLength(6);
    expect(problemsOf({ ...base, repos: [], image: { existing: "x" } })).toEqual(["repos: list at least one repo"]);
  });

  it("never shows zod's wording, whatever the file holds (property)", () => {
    const json = fc.jsonValue({ maxDepth: 3 });
    fc.assert(
      fc.property(
        fc.record(
          {
            name: json,
            repos: json,
            image: fc.oneof(json, fc.dictionary(fc.constantFrom("existing", "dockerfile", "files", "context", "tag", "x"), json)),
            resources: json,
            env: json,
          },
          { requiredKeys: [] },
        ),
        (input) => {
          let problems: string[] = [];
          try {
            defineProject(input as never);
          } catch (error) {
            // Only the documented error, never a crash of the describer.
            expect(InvalidProjectError.isInstance(error)).toBe(true);
            problems = [...(error as InvalidProjectError).problems];
          }
          for (const problem of problems) expect(problem).not.toMatch(ZOD_WORDING);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("reports the same wording from a YAML file (what bulkhead build and dispatch print)", async () => {
    await using dir = createTempDir();
    const path = join(dir.path, "bulkhead.yaml");
    writeFileSync(path, "name: app\nrepos:\n  - name: api\n    path: api\nimage: node:20\n");
    expect(() => loadProject(path)).toThrow(
      /- image: expected a mapping, got the text "node:20"; for an image on this host write image: \{ existing: "node:20" \}/,
    );
  });
});

import { createTempDir, git, initRepo } from "@bulkhead/test-utils";
import { parseTaskSpec } from "@bulkhead/core";
import fc from "fast-check";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildHandover } from "./build-handover.js";
import { handoverFromJson, handoverToJson } from "./consume-handover.js";
import { handoverSchema, type HandoverDocument } from "./handover-document.js";
import { parseHandover } from "./parse-handover.js";
import { renderHandover } from "./render-handover.js";

const base: HandoverDocument = {
  id: "handover-20261201T100000000Z-a1b2c3",
  task: { id: "rate-limit", title: "Rate limiting" },
  status: "complete",
  done: ["Added the middleware"],
  filesChanged: [],
  crossRepoImpact: { reposTouched: [], held: [] },
  nextTaskDependencies: [],
  gates: [],
  notes: ["Failure: the in-process limiter reset on every deploy"],
  createdAt: "2026-12-01T10:00:00.000Z",
  trimmed: [],
};

describe("handover decisions and the memory given", () => {
  it("renders both sections only when present, and reads them back exactly", () => {
    expect(renderHandover(base)).not.toContain("## Decisions");
    expect(renderHandover(base)).not.toContain("## Memory given");
    const document: HandoverDocument = {
      ...base,
      decisions: ["Rate limits live in Redis — instances share the limit", "[applies: workspace] Errors carry a code"],
      memoryGiven: ["m-3f9a2c41d0e7", "m-000000000001"],
    };
    const markdown = renderHandover(document);
    expect(markdown).toContain(
      [
        "## Decisions",
        "- Rate limits live in Redis — instances share the limit",
        "- [applies: workspace] Errors carry a code",
        "",
        "## Memory given",
        "- m-3f9a2c41d0e7",
        "- m-000000000001",
        "",
      ].join("\n"),
    );
    expect(parseHandover(markdown)).toEqual(document);
    expect(handoverFromJson(handoverToJson(document))).toEqual(document);
    // Present but empty stays present: "no memory was given" differs from "not recorded".
    const none = { ...base, decisions: [], memoryGiven: [] };
    expect(renderHandover(none)).toContain("## Memory given\n_None._");
    expect(parseHandover(renderHandover(none))).toEqual(none);
  });

  it("refuses a trimmed marker in a section that is never trimmed, and a malformed id", () => {
    const markdown = renderHandover({ ...base, memoryGiven: ["m-3f9a2c41d0e7"] }).replace("- m-3f9a2c41d0e7", "- _(+2 more)_");
    expect(() => parseHandover(markdown)).toThrow('"## Memory given" is never trimmed');
    const bad = renderHandover({ ...base, memoryGiven: ["m-3f9a2c41d0e7"] }).replace("- m-3f9a2c41d0e7", "- Not An Id");
    expect(() => parseHandover(bad)).toThrow("expected a memory entry id");
  });

  it("round-trips any decisions and ids (property)", () => {
    const decision = fc.string({ unit: "grapheme", minLength: 0, maxLength: 40 }).filter((text) => !/[\r\n]/.test(text));
    const id = fc.stringMatching(/^[a-z0-9][a-z0-9-]{2,20}$/);
    fc.assert(
      fc.property(
        fc.option(fc.array(decision, { maxLength: 4 }), { nil: undefined }),
        fc.option(fc.array(id, { maxLength: 4 }), { nil: undefined }),
        (decisions, memoryGiven) => {
          const document = handoverSchema.parse({
            ...base,
            ...(decisions === undefined ? {} : { decisions }),
            ...(memoryGiven === undefined ? {} : { memoryGiven }),
          });
          expect(parseHandover(renderHandover(document))).toEqual(document);
        },
      ),
    );
  });

  it("buildHandover records them from a real repository's task", async () => {
    await using dir = createTempDir();
    const repo = join(dir.path, "api");
    initRepo(repo, { "src/index.ts": "export {};\n" });
    const sha = git(repo, ["rev-parse", "HEAD"]);
    writeFileSync(join(repo, "src/limit.ts"), "export const limit = 100;\n");
    const spec = parseTaskSpec(
      "task: Rate limiting\ncontext_scope: { repos: [{ name: api, paths: [src] }], max_files: 5, max_tokens: 1000 }\nownership: { primary_repo: api }\n",
    );
    const document = await buildHandover({
      spec,
      repos: { api: repo },
      base: { api: sha },
      summary: ["Added the limit"],
      decisions: ["Limits are per user — per-IP limits punish offices"],
      memoryGiven: ["m-3f9a2c41d0e7"],
    });
    expect(document).toMatchObject({ decisions: ["Limits are per user — per-IP limits punish offices"], memoryGiven: ["m-3f9a2c41d0e7"] });
    expect(parseHandover(renderHandover(document))).toEqual(document);
  });
});

import { appendFileSync, copyFileSync } from "node:fs";
import { join } from "node:path";
import { buildImage, defineProject, imageTag } from "@bulkhead/sandbox";

// The label prefix the sandbox puts on what it makes (internal to it, so spelled out here).
const LABEL = "dev.bulkhead";
import { createTempDir, docker, initRepo } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { agentImage } from "./index.js";

describe("agentImage's tag", () => {
  it("is content-addressed by agent, version and base, with no project name in it", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "api"), { "a.txt": "a\n" });
    const claude = agentImage({ agent: "claude-code" });
    expect(claude.tag).toMatch(/^bulkhead-agent-claude-code:\d+\.\d+\.\d+-[0-9a-f]{16}$/);
    expect(agentImage({ agent: "claude-code" }).tag).toBe(claude.tag);
    // The version in the tag is the one baked in (the Dockerfile's label says the same).
    expect(claude.dockerfile).toContain(`dev.bulkhead.agent-version=${claude.tag.split(":")[1]!.split("-")[0]}`);
    // Two projects get the same image, whatever their names.
    const project = (name: string) => defineProject({ name, repos: [{ name: "api", path: join(dir.path, "api") }], image: claude });
    expect(imageTag(project("one"))).toBe(claude.tag);
    expect(imageTag(project("two"))).toBe(claude.tag);

    const codex = agentImage({ agent: "codex" });
    expect(codex.tag).toMatch(/^bulkhead-agent-codex:\d+\.\d+\.\d+[^:]*-[0-9a-f]{16}$/);
  });

  it("changes when the base or the session user changes", async () => {
    await using dir = createTempDir();
    const claude = agentImage({ agent: "claude-code" });
    expect(agentImage({ agent: "claude-code", user: "1001:1001" }).tag).not.toBe(claude.tag);
    const busybox = join(dir.path, "busybox");
    copyFileSync("/bin/busybox", busybox);
    expect(agentImage({ agent: "claude-code", busybox }).tag).toBe(claude.tag);
    appendFileSync(busybox, "\n");
    expect(agentImage({ agent: "claude-code", busybox }).tag).not.toBe(claude.tag);
    expect(agentImage({ agent: "claude-code", extraExecutables: [] }).tag).not.toBe(claude.tag);
  });

  it("is baked once per host: a second project reuses the first one's image", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "api"), { "a.txt": "a\n" });
    const image = agentImage({ agent: "claude-code" });
    const first = await buildImage(defineProject({ name: "image-share-a", repos: [{ name: "api", path: join(dir.path, "api") }], image }));
    const second = await buildImage(defineProject({ name: "image-share-b", repos: [{ name: "api", path: join(dir.path, "api") }], image }));
    expect(first.tag).toBe(image.tag);
    expect(second).toEqual({ tag: image.tag, cached: true });
    const labels = JSON.parse(docker(["image", "inspect", "--format", "{{json .Config.Labels}}", image.tag])) as Record<string, string>;
    expect(labels).toMatchObject({ [LABEL]: "1", "dev.bulkhead.agent": "claude-code" });
    // A shared image belongs to no one project.
    expect(labels[`${LABEL}.project`]).toBeUndefined();
  });
});

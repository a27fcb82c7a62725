import { join } from "node:path";
import { createTempDir, docker, initRepo } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";
import { buildImage, imageTag } from "./build-image.js";
import { defineProject } from "./project-config.js";
import { InvalidProjectError } from "./sandbox-errors.js";

describe("buildImage", () => {
  it("bakes an offline image from files once, and reuses it while nothing changes", async () => {
    await using dir = createTempDir();
    initRepo(join(dir.path, "app"));
    dir.write({ "image/hello.txt": `hello ${Date.now()}\n` });
    const base = { name: "baked", repos: [{ name: "app", path: join(dir.path, "app") }] };
    const project = defineProject({
      ...base,
      image: {
        files: { "rootfs/bin/busybox": "/bin/busybox", "rootfs/etc/hello.txt": join(dir.path, "image/hello.txt") },
        dockerfile: 'FROM scratch\nCOPY rootfs/ /\nCMD ["/bin/busybox", "cat", "/etc/hello.txt"]\n',
      },
    });
    const lines: string[] = [];
    const first = await buildImage(project, { onProgress: (line) => lines.push(line) });
    expect(first).toEqual({ tag: imageTag(project), cached: false });
    expect(lines.length).toBeGreaterThan(0);
    expect(await buildImage(project)).toEqual({ tag: first.tag, cached: true });
    expect(docker(["run", "--rm", "--network", "none", first.tag])).toMatch(/^hello \d+$/);
    expect(JSON.parse(docker(["image", "inspect", first.tag]))[0].Config.Labels).toMatchObject({
      "dev.bulkhead": "1",
      "dev.bulkhead.project": "baked",
    });
    docker(["rmi", "--force", first.tag]);
    const failing = defineProject({ ...base, image: { files: {}, dockerfile: "FROM scratch\nRUN /does-not-exist\n" } });
    await expect(buildImage(failing)).rejects.toThrow(/^build: docker build of bulkhead-baked:[0-9a-f]{16} failed/);
    await expect(buildImage(defineProject({ ...base, image: { existing: "bulkhead-not-here:1" } }))).rejects.toThrow(InvalidProjectError);
  });
});

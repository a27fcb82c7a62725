import { inject, describe, expect, it } from "vitest";
import { TEST_LABEL, docker, removeStoppedTestContainers } from "./docker.js";

describe("the offline test image", () => {
  const image = inject("testImage");

  it("is built from scratch: two layers of our own (busybox, its links), labelled", () => {
    const info = JSON.parse(docker(["image", "inspect", image]))[0];
    expect(info.RootFS.Layers).toHaveLength(2);
    expect(info.Config.Labels[TEST_LABEL]).toBe("1");
    expect(info.Size).toBeLessThan(10 * 1024 * 1024);
  });

  it("runs busybox applets as an unprivileged user with no network", () => {
    const output = docker([
      "run",
      "--rm",
      "--network",
      "none",
      "--user",
      "1000:1000",
      "--cap-drop",
      "ALL",
      image,
      "sh",
      "-c",
      "id -u; echo hello",
    ]);
    expect(output.split("\n")).toEqual(["1000", "hello"]);
  });
});

describe("removeStoppedTestContainers", () => {
  const image = inject("testImage");

  it("removes the stopped test containers created since a time, and keeps running and older ones", () => {
    const label = `dev.bulkhead.test.cleanup=${process.pid}-${Date.now()}`;
    const create = (...args: string[]) => docker(["create", "--label", label, "--network", "none", ...args, image, "sleep", "600"]);
    const older = create();
    const since = new Date(Date.now() + 1_500);
    // Docker stamps creation in whole seconds: wait past `since` before the containers that count.
    while (Date.now() < since.getTime() + 1_000) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    const stopped = create();
    const running = create();
    docker(["start", running]);
    try {
      expect(removeStoppedTestContainers(since, { label })).toBe(1);
      const left = docker(["ps", "-a", "--no-trunc", "--filter", `label=${label}`, "--format", "{{.ID}}"]).split("\n");
      expect(left.sort()).toEqual([older, running].sort());
      expect(left).not.toContain(stopped);
    } finally {
      docker(["rm", "-f", older, stopped, running].filter(Boolean));
    }
  });
});

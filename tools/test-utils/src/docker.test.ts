import { inject, describe, expect, it } from "vitest";
import { TEST_LABEL, docker } from "./docker.js";

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

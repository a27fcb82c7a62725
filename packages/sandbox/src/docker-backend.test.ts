import { describeSandboxBackend } from "@bulkhead/test-utils";
import { inject } from "vitest";
import { createDockerBackend, dockerCreateOptions } from "./docker-backend.js";
import { describe, expect, it } from "vitest";

describeSandboxBackend("docker (real engine)", () => ({ backend: createDockerBackend(), image: inject("testImage") }));

describe("the Docker request of a spec", () => {
  it("always carries the hardening, whatever the spec asks", () => {
    const options = dockerCreateOptions({
      name: "bulkhead-x",
      image: "img",
      command: ["sh"],
      user: "1000:1000",
      workdir: "/workspace",
      env: { A: "1" },
      labels: { l: "v" },
      mounts: [
        { host: "/h", container: "/workspace", readOnly: false },
        { host: "/r", container: "/r", readOnly: true },
      ],
      tmpfs: { "/tmp": "rw" },
      network: "none",
      limits: { pids: 10, memoryBytes: 1024, cpus: 0.5 },
      readonlyRoot: true,
      devices: [],
      restartWithEngine: true,
    });
    expect(options).toMatchObject({
      NetworkDisabled: true,
      Env: ["A=1"],
      HostConfig: {
        Binds: ["/h:/workspace:rw", "/r:/r:ro"],
        CapDrop: ["ALL"],
        SecurityOpt: ["no-new-privileges"],
        Privileged: false,
        NetworkMode: "none",
        PidsLimit: 10,
        NanoCpus: 500_000_000,
        ReadonlyRootfs: true,
        RestartPolicy: { Name: "unless-stopped" },
        DeviceRequests: [],
      },
    });
    expect(options.HostConfig).not.toHaveProperty("CapAdd");
  });
});

import type { SandboxBackend } from "@bulkhead/core";
import { z } from "zod";

/** A sandbox backend option, checked by shape (a backend from another installed copy is fine). */
export const backendSchema = (): z.ZodType<SandboxBackend> =>
  z.custom<SandboxBackend>(
    (value) =>
      typeof value === "object" &&
      value !== null &&
      ["create", "start", "stop", "remove", "inspect", "list", "exec", "spawn", "faultOf"].every(
        (method) => typeof (value as Record<string, unknown>)[method] === "function",
      ),
    "expected a SandboxBackend (createDockerBackend())",
  );

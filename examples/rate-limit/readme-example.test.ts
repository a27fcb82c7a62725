import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

describe("the README's first example", () => {
  it("is first-agent.ts, which npm run typecheck compiles", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    const first = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    const file = readFileSync(new URL("first-agent.ts", import.meta.url), "utf8").split("// --- README ---\n")[1];
    expect(file).toBeDefined();
    expect(first).toBe(file);
    // The real agent path: a sealed session, the gateway, Claude Code.
    expect(first).toContain("createSession(project, { gateway: { socketPath } })");
    expect(first).toContain("provider: claudeCode()");
  });
});

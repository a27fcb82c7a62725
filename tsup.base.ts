import { readFileSync } from "node:fs";
import { defineConfig, type Options } from "tsup";

/**
 * The one build configuration of every package (each package's tsup.config.ts calls it with its
 * entries). tsup runs in the package directory: its own package.json gives the version the build
 * injects.
 */
export function packageConfig({ entry = ["src/index.ts"] }: { entry?: string[] } = {}): Options {
  const { version } = JSON.parse(readFileSync("package.json", "utf8")) as { version: string };
  return defineConfig({
    entry,
    format: ["esm"],
    target: "node22",
    clean: true,
    sourcemap: true,
    // The version comes from the build (src/version.ts reads it), never a literal in the source.
    define: { __BULKHEAD_VERSION__: JSON.stringify(version) },
    // tsup's declaration build sets baseUrl, which TypeScript 6 deprecates; `@internal` members
    // (Session.stopProcess, Budget.replay, ...) stay out of the published types.
    dts: { compilerOptions: { ignoreDeprecations: "6.0", stripInternal: true } },
  }) as Options;
}

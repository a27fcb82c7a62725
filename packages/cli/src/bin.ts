#!/usr/bin/env node
import module from "node:module";

// V8's code cache for the modules the CLI loads (Node 22.1+, in the OS temp directory; off with
// NODE_DISABLE_COMPILE_CACHE=1), as TypeScript's own CLI does: a process that loads bulkhead and
// a tokenizer's rank table compiles them once per version, not on every run. Enabled before the
// CLI's modules are imported, so they are all cached; the counting threads follow the main thread.
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();
const { main } = await import("./main.js");

process.exitCode = await main(process.argv.slice(2));

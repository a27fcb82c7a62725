// The budget guard in a Vercel AI SDK loop, against the SDK's mock model. See run-example.ts.
import { runAiSdkBudgetExample } from "./run-example.js";

const { calls, refusal, snapshot } = await runAiSdkBudgetExample({ log: (line) => console.log(line) });
console.log(
  `\n${calls.length} calls ran, the last one cut at the limit; call ${calls.length + 1} was refused (${refusal?.code}); generation used ${snapshot.used.generation} of ${snapshot.limits.generation}`,
);

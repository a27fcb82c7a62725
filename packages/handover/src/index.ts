// The public API of @bulkhead/handover: one deliberate list.
export { assessCompletion, type CompletionAssessment, type ExpectedChange } from "./assess-completion.js";
export { buildHandover, type BuildHandoverOptions } from "./build-handover.js";
export type { ChangeSetInput } from "./change-set-input.js";
export { checkBeforeSpawn, type CheckBeforeSpawnOptions, type SpawnCheck } from "./check-before-spawn.js";
export { consumeHandover, handoverFromJson, handoverToJson, loadHandover } from "./consume-handover.js";
export { CONTEXT_COSTS, CONTEXT_RULE, estimateContext, layerOf, type ContextEstimate, type ContextWork } from "./estimate-context.js";
export {
  changedFileSchema,
  gateOutcomeSchema,
  handoverSchema,
  heldProposalSchema,
  TRIMMABLE_SECTIONS,
  trimmedListSchema,
  type ChangedFile,
  type GateOutcome,
  type HandoverDocument,
} from "./handover-document.js";
export { HandoverConsumedError, HandoverTooLargeError, InvalidHandoverError } from "./handover-errors.js";
export { parseHandover } from "./parse-handover.js";
export { renderContinuationPrompt, type PatternReference } from "./render-continuation-prompt.js";
export { renderHandover } from "./render-handover.js";
export { MAX_TASK_PROMPT_BYTES, renderTaskPrompt, type RenderTaskPromptOptions } from "./render-task-prompt.js";
export { suggestSplit, type SplitScope } from "./suggest-split.js";

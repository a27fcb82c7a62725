// The public API of @bulkhead/memory: one deliberate list.
export {
  InvalidMemoryEntryError,
  MemoryEntryNotFoundError,
  MemoryRefusedError,
  formatMemoryProblem,
  type MemoryProblem,
} from "./memory-errors.js";
export {
  MAX_MEMORY_APPLIES,
  MAX_MEMORY_BODY_CHARS,
  MAX_MEMORY_ENTRY_BYTES,
  MAX_MEMORY_TITLE_CHARS,
  MEMORY_ID_PATTERN,
  memoryEntryFileSchema,
  type MemoryApplies,
  type MemoryEntry,
  type MemoryEntryFile,
  type MemoryKind,
  type MemoryStatus,
} from "./memory-entry.js";
export { checkMemoryEntry } from "./check-memory-entry.js";
export {
  createFileMemoryStore,
  createVolatileMemoryStore,
  type MemoryListing,
  type MemoryStore,
  type MemoryUsage,
} from "./memory-store.js";
export { parseMemoryEntry, renderMemoryEntry } from "./parse-memory-entry.js";
export {
  parseApplies,
  parseAppliesTag,
  proposeFromHandover,
  type HandoverForMemory,
  type ProposeFromHandoverOptions,
} from "./propose-from-handover.js";
export { proposeMemoryEntry, type ProposeMemoryEntryInput } from "./propose-memory-entry.js";
export { describeApplies, MEMORY_SECTION_HEADER, renderMemoryBlock, renderMemorySection } from "./render-memory-section.js";
export {
  acceptMemoryEntry,
  applyMemoryPolicy,
  dropMemoryEntry,
  type AcceptMemoryEntryOptions,
  type MemoryEdit,
  type MemoryPolicy,
} from "./review-memory-entry.js";
export {
  DEFAULT_MEMORY_SHARE,
  selectMemory,
  type MemorySelection,
  type MemorySpecificity,
  type SelectedMemoryEntry,
  type SelectMemoryOptions,
} from "./select-memory.js";
export {
  GENERATED_MEMORY_MARKER,
  writeMemoryInstructions,
  type MemoryInstructionsResult,
  type WriteMemoryInstructionsOptions,
} from "./write-memory-instructions.js";

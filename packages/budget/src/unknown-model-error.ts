import { BulkheadError, errorMarker } from "@bulkhead/core";

/** No price or tokenizer is known for the model. bulkhead never prices an unknown model as zero. */
export class UnknownModelError extends BulkheadError<{ model: string; what: "price" | "tokenizer" }> {
  /** Marks this kind across copies of the package; see {@link BulkheadError.isInstance}. */
  static override readonly marker: symbol = errorMarker("UnknownModelError");

  constructor(model: string, what: "price" | "tokenizer", known: readonly string[]) {
    const hint =
      what === "price"
        ? "it is in neither your prices nor the @pydantic/genai-prices catalog: pass prices: [{ model, effectiveFrom, input, output }] (dollars per million tokens) or loadPriceTable(path)"
        : "pass { encoding } instead";
    const list = known.length === 0 ? "" : ` (known: ${known.slice(0, 12).join(", ")}${known.length > 12 ? ", ..." : ""})`;
    super("UNKNOWN_MODEL", `no ${what} known for model "${model}": ${hint}${list}`, { data: { model, what } });
    this.name = "UnknownModelError";
  }
}

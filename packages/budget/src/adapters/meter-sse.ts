// Internal: passes a server-sent-events body through event by event, for the SDK adapters that
// meter a stream on the wire (Anthropic, OpenAI) while the SDK itself still parses the bytes.

/** What an event handler decides: pass the event on, or end the stream after `append` (raw SSE). */
export type SseDecision = undefined | { end: true; append?: string };

/** How a metered SSE body ended. */
export type SseEnd = "done" | "stopped" | "canceled" | "error";

/** The largest event accepted; a bigger one is not an API's event, and holding it is unbounded. */
const MAX_EVENT_BYTES = 16 * 1024 * 1024;

/**
 * Returns a body that forwards `body`'s bytes event by event (`\n\n`-separated, `\r\n` too),
 * calling `onEvent` with each event's name and data first. `onEnd` is called exactly once.
 * Linear in the body: the buffer is scanned once, from where the last scan stopped.
 */
export function meterSse(
  body: ReadableStream<Uint8Array>,
  onEvent: (name: string | undefined, data: string) => SseDecision,
  onEnd: (how: SseEnd) => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let buffer = "";
  let scanned = 0;
  let ended = false;
  const end = (how: SseEnd) => {
    if (ended) return;
    ended = true;
    onEnd(how);
  };

  /** Forwards every complete event in the buffer, in one chunk; true when a handler ended the stream. */
  const drain = (controller: ReadableStreamDefaultController<Uint8Array>): boolean => {
    let out = "";
    let stopped = false;
    for (;;) {
      const match = /\r?\n\r?\n/g;
      match.lastIndex = Math.max(0, scanned - 3);
      const found = match.exec(buffer);
      if (!found) {
        scanned = buffer.length;
        if (buffer.length > MAX_EVENT_BYTES) throw new Error(`an SSE event is over ${MAX_EVENT_BYTES} bytes`);
        break;
      }
      const block = buffer.slice(0, found.index);
      buffer = buffer.slice(found.index + found[0].length);
      scanned = 0;
      let name: string | undefined;
      const data: string[] = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
      }
      const decision = data.length > 0 || name !== undefined ? onEvent(name, data.join("\n")) : undefined;
      out += `${block}\n\n`;
      if (decision?.end) {
        if (decision.append) out += decision.append;
        stopped = true;
        break;
      }
    }
    // One chunk for what one read completed: the SDK's reader then wakes once, not per event.
    if (out !== "") controller.enqueue(encoder.encode(out));
    return stopped;
  };

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        for (;;) {
          const next = await reader.read();
          if (next.done) {
            buffer += decoder.decode();
            if (!drain(controller) && buffer.trim() !== "") controller.enqueue(encoder.encode(buffer));
            controller.close();
            end("done");
            return;
          }
          buffer += decoder.decode(next.value, { stream: true });
          if (drain(controller)) {
            controller.close();
            end("stopped");
            await reader.cancel("stopped by the budget").catch(() => undefined);
            return;
          }
          if (controller.desiredSize !== null && controller.desiredSize <= 0) return;
        }
      } catch (error) {
        end("error");
        controller.error(error);
        await reader.cancel(error).catch(() => undefined);
      }
    },
    async cancel(reason) {
      end("canceled");
      await reader.cancel(reason).catch(() => undefined);
    },
  });
}

// Internal: the background read both metering paths (a JSON body, an SSE stream) share.

/**
 * The SDKs begin to read a response's body in the same turn as an adapter returns it (their
 * parse is a chain of promise callbacks), so this costs the read path one immediate. A body
 * nobody has begun to read by the next turn (an `asResponse()` kept for later, a stream handed
 * on, or dropped) goes to `read` as a clone, so a paid call is booked whether or not its caller
 * reads it; the caller's body keeps every byte for when it reads (the clone's tee holds them).
 * Nothing happens when `begun()` says a reader came, or when the body was already used some way
 * not seen here (then that reader has it).
 */
export function readIfUnread(response: Response, begun: () => boolean, read: (copy: Response) => void): void {
  setImmediate(() => {
    if (begun()) return;
    let copy: Response;
    try {
      copy = response.clone();
    } catch {
      return;
    }
    read(copy);
  });
}

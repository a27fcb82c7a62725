import { describe, expect, it } from "vitest";
import { AbortedError } from "./aborted-error.js";
import { createDeadline, sleep } from "./deadline.js";

describe("createDeadline", () => {
  it("fires with the caller's reason and throws AbortedError naming the operation", () => {
    const caller = new AbortController();
    const deadline = createDeadline({ abortSignal: caller.signal, timeoutMs: 60_000 });
    expect(deadline.signal.aborted).toBe(false);
    caller.abort("user pressed ^C");
    expect(deadline.signal.aborted).toBe(true);
    expect(deadline.signal.reason).toBe("user pressed ^C");
    expect(deadline.timedOut).toBe(false);
    const error = (() => {
      try {
        deadline.throwIfAborted("submit");
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(AbortedError);
    expect((error as AbortedError).message).toBe("submit was canceled");
    expect((error as AbortedError).cause).toBe("user pressed ^C");
    deadline.dispose();
  });

  it("is already aborted when the caller's signal was", () => {
    const deadline = createDeadline({ abortSignal: AbortSignal.abort("early") });
    expect(deadline.signal.aborted).toBe(true);
    expect(deadline.signal.reason).toBe("early");
    deadline.dispose();
  });

  it("times out with a TimeoutError reason and says so", async () => {
    const deadline = createDeadline({ timeoutMs: 5 });
    await new Promise((resolve) => deadline.signal.addEventListener("abort", resolve, { once: true }));
    expect(deadline.timedOut).toBe(true);
    expect((deadline.signal.reason as DOMException).name).toBe("TimeoutError");
    deadline.dispose();
  });

  it("dispose clears the timer and detaches from the caller", async () => {
    const caller = new AbortController();
    const deadline = createDeadline({ abortSignal: caller.signal, timeoutMs: 5 });
    deadline.dispose();
    await sleep(20);
    caller.abort();
    expect(deadline.signal.aborted).toBe(false);
    expect(deadline.timedOut).toBe(false);
  });

  it("works with `using`", () => {
    const caller = new AbortController();
    let signal: AbortSignal;
    {
      using deadline = createDeadline({ abortSignal: caller.signal });
      signal = deadline.signal;
    }
    caller.abort();
    expect(signal.aborted).toBe(false);
  });
});

describe("sleep", () => {
  it("resolves after the time", async () => {
    await expect(sleep(1)).resolves.toBeUndefined();
  });

  it("rejects with AbortedError at once when aborted", async () => {
    const caller = new AbortController();
    const pending = sleep(60_000, caller.signal, "poll");
    caller.abort("stop");
    const error = await pending.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AbortedError);
    expect((error as AbortedError).message).toBe("poll was canceled");
    await expect(sleep(1, AbortSignal.abort())).rejects.toBeInstanceOf(AbortedError);
  });
});

import { EventEmitter } from "eventemitter3";

/** A listener receives one readonly event object. */
export type EventListener<TEvent> = (event: Readonly<TEvent>) => void;

/**
 * A typed event emitter: each event name maps to one payload object.
 * Names are noun-verb (`proposal-pending`, `budget-exceeded`).
 *
 * @example
 * interface Events { "job-end": { jobId: string; exitCode: number } }
 * const events = new TypedEmitter<Events>();
 * events.on("job-end", ({ jobId, exitCode }) => console.log(jobId, exitCode));
 */
export class TypedEmitter<TEvents extends { [K in keyof TEvents]: object }> {
  readonly #emitter = new EventEmitter();

  on<K extends keyof TEvents & string>(name: K, listener: EventListener<TEvents[K]>): this {
    this.#emitter.on(name, listener);
    return this;
  }

  once<K extends keyof TEvents & string>(name: K, listener: EventListener<TEvents[K]>): this {
    this.#emitter.once(name, listener);
    return this;
  }

  off<K extends keyof TEvents & string>(name: K, listener: EventListener<TEvents[K]>): this {
    this.#emitter.off(name, listener);
    return this;
  }

  /** Emits a frozen copy of the event, so listeners cannot change what others see. */
  protected emit<K extends keyof TEvents & string>(name: K, event: TEvents[K]): void {
    this.#emitter.emit(name, Object.freeze({ ...event }));
  }
}

import type { StoredMessage } from "../types.ts";
import type { LifecycleDetail, PitstopEventMap, PitstopEventName } from "./api.ts";

/** The `detail` of an event about a claimed record. */
export const detailOf = (record: StoredMessage): LifecycleDetail => ({ id: record.id, topic: record.topic, attempt: record.attempts, at: record.at });

/**
 * The engine's `EventTarget`. It remembers which event types were ever listened to, so an engine
 * nobody listens to builds no event per delivery, ack and nack.
 */
export class LifecycleEvents extends EventTarget {
  readonly #listened = new Set<string>();

  override addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void {
    this.#listened.add(type);
    super.addEventListener(type, listener, options);
  }

  /** Whether anything ever listened to `type`: a caller builds a detail only then. */
  listened(type: PitstopEventName): boolean {
    return this.#listened.has(type);
  }

  /** Dispatches a `CustomEvent` of `type` with `detail`, if anything ever listened to `type`. */
  emit<K extends PitstopEventName>(type: K, detail: PitstopEventMap[K]["detail"]): void {
    if (this.#listened.has(type)) this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

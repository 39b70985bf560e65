import type { StoredMessage } from "../../src/types.ts";

/** The instant the store tests' records fall due. */
export const T0 = Date.parse("2026-03-01T12:00:00Z");
/** The lane of the store tests' records. */
export const lane = "topic:default";

/** A record of `lane`, due at {@link T0}, with `extra` on top. */
export const record = (id: string, extra: Partial<StoredMessage> = {}): StoredMessage => ({
  id,
  message: { id },
  lane,
  topic: "default",
  at: T0,
  dueAt: T0,
  attempts: 0,
  ...extra,
});

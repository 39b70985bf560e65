import type { Clock } from "../../src/engine/clock.ts";

/** A clock that moves only when told; timers fire as `advance` passes their time. */
export interface ManualClock extends Clock {
  advance(ms: number): void;
  set(time: number): void;
}

export function manualClock(start = Date.parse("2026-01-01T00:00:00Z")): ManualClock {
  let now = start;
  let timers: { at: number; fn: () => void }[] = [];
  const clock: ManualClock = {
    now: () => now,
    setTimer(delayMs, fn) {
      const timer = { at: now + delayMs, fn };
      timers.push(timer);
      return () => {
        timers = timers.filter((t) => t !== timer);
      };
    },
    set(time) {
      now = time;
      const due = timers.filter((t) => t.at <= now);
      timers = timers.filter((t) => t.at > now);
      for (const t of due) t.fn();
    },
    advance(ms) {
      clock.set(now + ms);
    },
  };
  return clock;
}

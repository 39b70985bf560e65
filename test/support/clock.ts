import type { Clock } from "../../src/engine/clock.ts";

/** A clock that moves only when told; timers fire as `advance` passes their time. */
export interface ManualClock extends Clock {
  advance(ms: number): void;
  set(time: number): void;
  /** Resolves once some timer is armed (a listener went to sleep), or rejects after `timeoutMs` of real time. */
  untilTimer(timeoutMs?: number): Promise<void>;
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
    async untilTimer(timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (timers.length === 0) {
        if (Date.now() > deadline) throw new Error(`no timer armed within ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    },
  };
  return clock;
}

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
  /** Callers of `untilTimer` waiting for the next timer to be armed. */
  let waiting: (() => void)[] = [];
  const clock: ManualClock = {
    now: () => now,
    setTimer(delayMs, fn) {
      const timer = { at: now + delayMs, fn };
      timers.push(timer);
      for (const wake of waiting.splice(0)) wake();
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
      if (timers.length > 0) return;
      await new Promise<void>((resolve, reject) => {
        const wake = () => {
          clearTimeout(ceiling);
          resolve();
        };
        const ceiling = setTimeout(() => {
          waiting = waiting.filter((w) => w !== wake);
          reject(new Error(`no timer armed within ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.push(wake);
      });
    },
  };
  return clock;
}

import { Cron, CronPattern } from "croner";
import { invalid } from "./errors.ts";
import { addDuration, nextOccurrenceAfter, occurrenceIndex } from "./schedule.ts";
import type { MissedPolicy } from "./types.ts";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Most missed occurrences the `"all"` policy delivers after an outage. */
export const MAX_MISSED = 1000;

/**
 * A recurring schedule: a cron expression, or an interval from `start`; in `tz` (default UTC),
 * with an inclusive `end`. All times are epoch ms.
 */
export interface Recurrence {
  cron?: string;
  interval?: string;
  /** First occurrence of an interval schedule. */
  start?: number;
  tz?: string;
  end?: number;
}

const ZONE_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/;

/**
 * Checks an IANA time zone name (`"Europe/Berlin"`, `"UTC"`) against the runtime's zone data.
 * @throws PitstopError `invalid_request` naming `field`.
 */
export function checkZone(value: unknown, field = "tz"): string {
  if (typeof value === "string" && value.length <= 64 && ZONE_NAME.test(value)) {
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: value });
      return value;
    } catch {
      // Unknown to the runtime: refused below.
    }
  }
  throw invalid(`${field} must be an IANA time zone name such as "Europe/Berlin" or "UTC"`, [field]);
}

/** A parsed cron expression in a zone, with the shortest spacing its times can have. */
interface CompiledCron {
  cron: Cron;
  /** Lower bound of the time between two occurrences, in ms. */
  spacingMs: number;
}

/** Parsed expressions, so an ack does not parse its message's expression again. */
const compiled = new Map<string, CompiledCron>();

function compile(expression: string, tz: string): CompiledCron {
  const key = `${tz} ${expression}`;
  let found = compiled.get(key);
  if (!found) {
    // croner: 5 fields (seconds 0) or 6 (with seconds). "no-wildcard": an expression whose second,
    // minute and hour fields name their values (no `*`, no step) keeps to the wall clock across
    // DST (a time in the gap fires at the end of the gap, a repeated time fires once, the first
    // time); one with `*` or a step in them runs by elapsed time, as cron daemons do.
    const options = { timezone: tz, mode: "5-or-6-parts", fixedTimeRule: "no-wildcard" } as const;
    const cron = new Cron(expression, options);
    const pattern = new CronPattern(expression, tz, options);
    if (compiled.size >= 1000) compiled.clear();
    found = { cron, spacingMs: shortestSpacing(pattern) };
    compiled.set(key, found);
  }
  return found;
}

/** Shortest distance between two set values of a cyclic field (seconds of a minute, …), or undefined for one value. */
function shortestGap(flags: number[], cycle: number): number | undefined {
  const set = flags.flatMap((flag, value) => (flag ? [value] : []));
  if (set.length < 2) return undefined;
  let gap = cycle - set[set.length - 1] + set[0];
  for (let i = 1; i < set.length; i++) gap = Math.min(gap, set[i] - set[i - 1]);
  return gap;
}

function shortestSpacing(pattern: CronPattern): number {
  const seconds = shortestGap(pattern.second, 60);
  if (seconds !== undefined) return seconds * SECOND;
  const minutes = shortestGap(pattern.minute, 60);
  if (minutes !== undefined) return minutes * MINUTE;
  const hours = shortestGap(pattern.hour, 24);
  return hours !== undefined ? hours * HOUR : DAY;
}

/**
 * Checks a cron expression: 5 fields (minute precision) or 6 (with seconds), in croner's syntax
 * (`*`, lists, ranges, steps, names such as `MON-FRI`, `L`, `W`, `#`, and `@daily`-style
 * nicknames). @throws PitstopError `invalid_request` naming `field`.
 */
export function checkCron(value: unknown, tz = "UTC", field = "cron"): string {
  if (typeof value !== "string" || value.length > 256) throw invalid(`${field} must be a cron expression of at most 256 characters`, [field]);
  try {
    compile(value, tz);
  } catch (error) {
    const reason = error instanceof Error ? error.message.replace(/^CronPattern: /, "") : String(error);
    throw invalid(`${field} must be a cron expression of 5 fields, or 6 with seconds (${reason})`, [field]);
  }
  return value;
}

/**
 * The first occurrence strictly after `after`, ignoring `end`; undefined when there is none within
 * the supported time range (croner's reaches the year 9999).
 */
export function occurrenceAfter(r: Recurrence, after: number): number | undefined {
  try {
    if (r.cron !== undefined) return compile(r.cron, r.tz ?? "UTC").cron.nextRun(new Date(after))?.getTime();
    return nextOccurrenceAfter(r.start!, r.interval!, after, r.tz);
  } catch {
    return undefined;
  }
}

/** Whether `time` is within the schedule's `end`. */
const beforeEnd = (r: Recurrence, time: number) => r.end === undefined || time <= r.end;

/** Up to `count` occurrences at or after `from`, up to `end`, in order. */
export function occurrences(r: Recurrence, from: number, count: number): number[] {
  const list: number[] = [];
  let next = occurrenceAfter(r, from - 1);
  while (next !== undefined && list.length < count && beforeEnd(r, next)) {
    list.push(next);
    next = occurrenceAfter(r, next);
  }
  return list;
}

/**
 * The occurrence that follows `at` once it is acked at `now`: with `"all"` the one right after
 * `at` (possibly already due: missed ones are delivered in turn), otherwise the first after `now`
 * (missed ones are dropped). Like {@link occurrenceAfter}, it ignores `end`, and is undefined past
 * the supported time range.
 */
export function occurrenceAfterAck(r: Recurrence, at: number, now: number, missed: MissedPolicy = "once"): number | undefined {
  return occurrenceAfter(r, missed === "all" ? at : Math.max(at, now));
}

/**
 * What a claim at `now` of occurrence `at` does under the `missed` policy: undefined to deliver it,
 * or `{ next }` to move the schedule to `next` without delivering (`next` undefined: the schedule
 * is over). An occurrence is missed when the one after it has also come due.
 * - `"skip"`: a missed occurrence is not delivered; the schedule moves to the first occurrence
 *   after `now`.
 * - `"all"`: when more than {@link MAX_MISSED} occurrences are due, it moves to the oldest of the
 *   newest 1,000 (for a cron: the first one within 1,000 × its shortest spacing before `now`).
 * - `"once"`: always delivered.
 */
export function catchUp(r: Recurrence, at: number, now: number, missed: MissedPolicy = "once"): { next: number | undefined } | undefined {
  if (missed === "skip") {
    const following = occurrenceAfter(r, at);
    if (following === undefined || following > now || !beforeEnd(r, following)) return undefined;
    const next = occurrenceAfter(r, now);
    return { next: next !== undefined && beforeEnd(r, next) ? next : undefined };
  }
  if (missed === "all") {
    const last = r.end === undefined ? now : Math.min(now, r.end);
    let oldest: number | undefined;
    if (r.cron !== undefined) {
      const windowStart = last - MAX_MISSED * compile(r.cron, r.tz ?? "UTC").spacingMs;
      if (at <= windowStart) oldest = occurrenceAfter(r, windowStart);
    } else {
      const due = occurrenceIndex(r.start!, r.interval!, last, r.tz);
      if (due - occurrenceIndex(r.start!, r.interval!, at - 1, r.tz) > MAX_MISSED) {
        oldest = addDuration(r.start!, r.interval!, due - MAX_MISSED, r.tz);
      }
    }
    if (oldest !== undefined && oldest > at) return { next: beforeEnd(r, oldest) ? oldest : undefined };
  }
  return undefined;
}

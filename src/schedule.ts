import { TZDate, tzOffset } from "@date-fns/tz";
import { addMonths } from "date-fns";
import { invalid } from "./errors.ts";
import type { DurationInput, TimeInput } from "./types.ts";

/** Largest distance from the epoch a JavaScript `Date` can hold, in ms. */
const MAX_TIME = 8.64e15;
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;
/** Gregorian averages, used only to estimate how many occurrences fit in a span. */
const AVG_MONTH = (365.2425 / 12) * DAY;
const AVG_YEAR = 365.2425 * DAY;

const TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(?:Z|([+-])(\d{2}):(\d{2}))$/;
const DURATION =
  /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.(\d{1,3}))?S)?)?$/;

/** A parsed duration. Seconds are kept as whole milliseconds. */
interface Parts {
  years: number;
  months: number;
  weeks: number;
  days: number;
  hours: number;
  minutes: number;
  ms: number;
}

/**
 * Parses a time: a valid `Date`, integer epoch milliseconds, or an ISO-8601 timestamp with a time
 * and an explicit offset (`"2026-01-01T10:00:00Z"`, `"2026-01-01T10:00:00.123+02:00"`). Digits
 * beyond milliseconds are truncated. Returns epoch milliseconds.
 * @throws PitstopError `invalid_request` naming `field` for anything else.
 */
export function parseTime(input: TimeInput | unknown, field = "at"): number {
  let ms: number | undefined;
  if (input instanceof Date) ms = input.getTime();
  else if (typeof input === "number" && Number.isInteger(input)) ms = input;
  else if (typeof input === "string") ms = parseTimestamp(input);
  if (ms === undefined || !Number.isFinite(ms)) {
    throw invalid(`${field} must be an ISO-8601 timestamp with an offset, or epoch milliseconds`, [field]);
  }
  if (Math.abs(ms) > MAX_TIME) throw invalid(`${field} is out of the supported time range`, [field]);
  return ms;
}

function parseTimestamp(input: string): number | undefined {
  const m = TIMESTAMP.exec(input);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map((c) => Number(c ?? 0));
  const fraction = Number((m[7] ?? "").slice(0, 3).padEnd(3, "0"));
  const offset = m[8] ? (m[8] === "-" ? -1 : 1) * (Number(m[9]) * HOUR + Number(m[10]) * MINUTE) : 0;
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month - 1)) return undefined;
  if (hour > 23 || minute > 59 || second > 59 || Number(m[9] ?? 0) > 23 || Number(m[10] ?? 0) > 59) {
    return undefined;
  }
  return utc(year, month - 1, day) + hour * HOUR + minute * MINUTE + second * SECOND + fraction - offset;
}

/**
 * Parses a positive duration: integer milliseconds, or an ISO-8601 duration `PnYnMnWnDTnHnMnS`
 * (upper case; seconds may carry up to three decimals). Returns it normalized: zero components
 * dropped, numbers as time-only (`500` → `"PT0.5S"`, `86400000` → `"PT24H"`).
 * @throws PitstopError `invalid_request` naming `field` for malformed, zero or absurdly long ones.
 */
export function parseDuration(input: DurationInput | unknown, field = "interval"): string {
  return formatDuration(toParts(input, field));
}

function toParts(input: unknown, field: string, allowZero = false): Parts {
  let parts: Parts | undefined;
  if (typeof input === "number" && Number.isInteger(input) && (input > 0 || (allowZero && input === 0))) {
    parts = { years: 0, months: 0, weeks: 0, days: 0, hours: 0, minutes: 0, ms: 0 };
    parts.hours = Math.floor(input / HOUR);
    parts.minutes = Math.floor((input % HOUR) / MINUTE);
    parts.ms = input % MINUTE;
  } else if (typeof input === "string") {
    const m = DURATION.exec(input);
    // The regex alone accepts "P", "PT" and "P1DT": a component and no dangling T are required.
    if (m && m.slice(1, 8).some((c) => c !== undefined) && !input.endsWith("T")) {
      const [years, months, weeks, days, hours, minutes, seconds] = m.slice(1, 8).map((c) => Number(c ?? 0));
      const ms = seconds * SECOND + Number((m[8] ?? "").padEnd(3, "0"));
      parts = { years, months, weeks, days, hours, minutes, ms };
    }
  }
  if (!parts) {
    throw invalid(
      `${field} must be an ISO-8601 duration such as "PT1H" or "P1M", or a positive integer of milliseconds`,
      [field],
    );
  }
  const length = approxMs(parts);
  if (length === 0 && !allowZero) throw invalid(`${field} must be longer than zero`, [field]);
  if (!(length <= MAX_TIME)) throw invalid(`${field} is too long`, [field]);
  return parts;
}

function formatDuration(p: Parts): string {
  const unit = (value: number, suffix: string) => (value ? `${value}${suffix}` : "");
  const fraction = p.ms % SECOND;
  const seconds = fraction
    ? `${Math.floor(p.ms / SECOND)}.${String(fraction).padStart(3, "0").replace(/0+$/, "")}S`
    : unit(p.ms / SECOND, "S");
  const time = unit(p.hours, "H") + unit(p.minutes, "M") + seconds;
  return `P${unit(p.years, "Y")}${unit(p.months, "M")}${unit(p.weeks, "W")}${unit(p.days, "D")}${time ? `T${time}` : ""}`;
}

/** Length in ms of the fixed (week and smaller) components. */
function fixedMs(p: Parts): number {
  return p.weeks * WEEK + p.days * DAY + p.hours * HOUR + p.minutes * MINUTE + p.ms;
}

function approxMs(p: Parts): number {
  return p.years * AVG_YEAR + p.months * AVG_MONTH + fixedMs(p);
}

/**
 * Adds `times` × `duration` to `instant`, computed directly from `instant` (so a schedule never
 * drifts). Without `tz`: years and months on UTC calendar fields, clamping the day to the month's
 * end (Jan 31 + P1M = Feb 28, Jan 31 + 2 × P1M = Mar 31); weeks, days and time as exact
 * milliseconds (days are 24 h in UTC). With `tz` (an IANA zone): years, months, weeks and days step
 * that zone's wall clock (P1D from 09:00 stays at 09:00 across DST, resolved by
 * {@link zonedInstant}), then hours, minutes and seconds are added as exact milliseconds.
 * @throws PitstopError `invalid_request` when the result leaves the supported time range.
 */
export function addDuration(instant: number, duration: string, times = 1, tz?: string): number {
  const p = toParts(duration, "duration");
  const months = times * (p.years * 12 + p.months);
  let result: number;
  if (tz === undefined) {
    result = instant;
    // date-fns clamps the day to the month's end; a UTC TZDate keeps the calendar in UTC.
    if (months !== 0) result = addMonths(new TZDate(instant, "UTC"), months).getTime();
    result += times * fixedMs(p);
  } else {
    const days = times * (p.weeks * 7 + p.days);
    result = instant;
    if (months !== 0 || days !== 0) {
      // The wall clock coded as a UTC time, so the calendar math below needs no zone.
      let wall = instant + offsetMs(tz, instant);
      if (months !== 0) wall = addMonths(new TZDate(wall, "UTC"), months).getTime();
      wall += days * DAY;
      if (!(Math.abs(wall) <= MAX_TIME)) throw invalid("time is out of the supported time range", ["time"]);
      result = zonedInstant(wall, tz);
    }
    result += times * (p.hours * HOUR + p.minutes * MINUTE + p.ms);
  }
  if (!(Math.abs(result) <= MAX_TIME)) throw invalid("time is out of the supported time range", ["time"]);
  return result;
}

/** UTC offset of `tz` at `instant`, in ms (east positive). */
function offsetMs(tz: string, instant: number): number {
  return tzOffset(tz, new Date(instant)) * MINUTE;
}

/**
 * The instant at which the wall clock of `tz` shows `wall` (a wall-clock time coded as if it were
 * UTC). The DST rules: a wall time that occurs twice (fall back) is its first instance; one that
 * does not exist (spring forward) becomes the first instant after the gap (02:30 on the day
 * Europe/Berlin jumps from 02:00 to 03:00 is 03:00 CEST).
 */
export function zonedInstant(wall: number, tz: string): number {
  const before = offsetMs(tz, wall - DAY);
  const after = offsetMs(tz, wall + DAY);
  // The larger offset gives the earlier instant: try it first, so an overlap yields its first instance.
  for (const offset of before >= after ? [before, after] : [after, before]) {
    if (offsetMs(tz, wall - offset) === offset) return wall - offset;
  }
  // In a gap: the offset changes from `before` to `after` between these two instants; find where.
  let lo = wall - after;
  let hi = wall - before;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (offsetMs(tz, mid) === before) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** True when the duration has no years or months, so it has one length in ms (weeks and days are fixed in UTC). */
export function isFixedDuration(duration: string): boolean {
  const p = toParts(duration, "duration");
  return p.years === 0 && p.months === 0;
}

/**
 * A delay in ms: like a fixed duration, but zero (`0`, `"PT0S"`) is allowed and means now.
 * @throws PitstopError `invalid_request` naming `field` for malformed ones or years and months.
 */
export function delayMs(input: DurationInput | unknown, field: string): number {
  const p = toParts(input, field, true);
  if (p.years !== 0 || p.months !== 0) throw invalid(`${field} must not use years or months`, [field]);
  return fixedMs(p);
}

/**
 * Length in ms of a fixed duration.
 * @throws PitstopError `invalid_request` naming `field` when it uses years or months.
 */
export function durationMs(duration: string, field = "duration"): number {
  const p = toParts(duration, field);
  if (p.years !== 0 || p.months !== 0) throw invalid(`${field} must not use years or months`, [field]);
  return fixedMs(p);
}

/**
 * The smallest k ≥ 0 for which occurrence `start + k × interval` (stepped in `tz`, as
 * {@link addDuration} does) is strictly after `after`. Constant time however far `after` is: k is
 * estimated from the average length of the interval and corrected by a step or two.
 */
export function occurrenceIndex(start: number, interval: string, after: number, tz?: string): number {
  if (start > after) return 0;
  const p = toParts(interval, "interval");
  let k = Math.floor((after - start) / approxMs(p)) + 1;
  while (k > 1 && addDuration(start, interval, k - 1, tz) > after) k--;
  while (addDuration(start, interval, k, tz) <= after) k++;
  return k;
}

/**
 * The first occurrence `start + k × interval` (k ≥ 0, stepped in `tz`) strictly after `after`;
 * `start` itself when it is later. Constant time, see {@link occurrenceIndex}.
 */
export function nextOccurrenceAfter(start: number, interval: string, after: number, tz?: string): number {
  return addDuration(start, interval, occurrenceIndex(start, interval, after, tz), tz);
}

/** ISO-8601 UTC with milliseconds, e.g. `"2026-01-01T10:00:00.000Z"`. */
export function formatTime(ms: number): string {
  if (!(Math.abs(ms) <= MAX_TIME)) throw invalid("time is out of the supported time range", ["time"]);
  return new Date(ms).toISOString();
}

/** Retry delay after the `attempts`-th failure (from 1): 1 s, 2 s, 4 s, … capped at `capMs`. */
export function backoffMs(attempts: number, capMs: number): number {
  return Math.min(capMs, SECOND * 2 ** Math.max(0, attempts - 1));
}

function daysInMonth(year: number, month: number): number {
  if (month !== 1) return [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month];
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
}

/** Midnight UTC of a date; unlike `Date.UTC`, years 0–99 are not shifted to 1900–1999. */
function utc(year: number, month: number, day: number): number {
  return new Date(0).setUTCFullYear(year, month, day);
}

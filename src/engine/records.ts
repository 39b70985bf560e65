import { invalid } from "../errors.ts";
import { checkCron, checkZone, occurrenceAfter, occurrences, type Recurrence } from "../recurrence.ts";
import { addDuration, durationMs, formatTime, parseDuration, parseTime } from "../schedule.ts";
import { missedPolicies, type MissedPolicy, type StoredMessage } from "../types.ts";
import type { MessageView, ScheduleInput, ScheduleTiming, ScheduleView, Scheduled } from "./api.ts";
import { checkMessage, checkName } from "./checks.ts";
import { laneOf } from "./lanes.ts";
import type { LastDelivery } from "./lateness.ts";
import { checkMaxAttempts } from "./policies.ts";

/** The last `seq` given: each record gets more than the one before, also many in one millisecond. */
let lastSeq = 0;

/** A checked timing: the first (or only) occurrence, and the recurrence of a recurring one. */
export interface Timing {
  at: number;
  recurrence?: Recurrence;
}

/**
 * Checks when a message would be emitted. Throws `invalid_request` naming the field for a bad
 * time, duration, zone or expression, `cron` with `interval`, `tz` or `end` without either, and a
 * schedule with no occurrence between `at` and `end`.
 */
export function timingOf(input: ScheduleTiming, now: number): Timing {
  const at = input.at === undefined ? now : parseTime(input.at, "at");
  if (input.cron !== undefined && input.interval !== undefined) {
    throw invalid("cron and interval are mutually exclusive: give one of them", ["cron"]);
  }
  const tz = input.tz === undefined ? undefined : checkZone(input.tz, "tz");
  const interval = input.interval === undefined ? undefined : parseDuration(input.interval, "interval");
  const cron = input.cron === undefined ? undefined : checkCron(input.cron, tz, "cron");
  const end = input.end === undefined || input.end === null ? undefined : parseTime(input.end, "end");
  if (interval === undefined && cron === undefined) {
    if (tz !== undefined) throw invalid("tz requires an interval or a cron", ["tz"]);
    if (end !== undefined) throw invalid("end requires an interval or a cron", ["end"]);
    return { at };
  }
  if (end !== undefined && end < at) throw invalid("end must not be before at", ["end"]);
  const common = { ...(tz !== undefined && { tz }), ...(end !== undefined && { end }) };
  if (cron !== undefined) {
    const recurrence = { cron, ...common };
    const first = occurrenceAfter(recurrence, at - 1);
    if (first === undefined) throw invalid("cron has no occurrence at or after at", ["cron"]);
    if (end !== undefined && first > end) throw invalid("the schedule has no occurrence between at and end", ["end"]);
    return { at: first, recurrence };
  }
  if (!secondOccurrenceFits(at, interval!, tz)) {
    throw invalid("interval is so long that the next occurrence would be past the supported time range", ["interval"]);
  }
  return { at, recurrence: { interval, start: at, ...common } };
}

/** Checks a missed-occurrence policy. @throws PitstopError `invalid_request` naming `missed`. */
function checkMissed(value: unknown): MissedPolicy {
  if (!(missedPolicies as readonly unknown[]).includes(value)) {
    throw invalid(`missed must be one of ${missedPolicies.map((p) => `"${p}"`).join(", ")}`, ["missed"]);
  }
  return value as MissedPolicy;
}

/**
 * The record a valid input becomes, with `callback` already checked. Throws `invalid_request`
 * naming the field for anything wrong, before anything is stored.
 */
export function recordOf(input: ScheduleInput, now: number, callback: string | undefined): StoredMessage {
  const message = checkMessage(input.message);
  const topic = checkName(input.topic ?? "default", "topic");
  const { at, recurrence } = timingOf(input, now);
  const missed = input.missed === undefined ? undefined : checkMissed(input.missed);
  if (missed !== undefined && !recurrence) throw invalid("missed requires an interval or a cron", ["missed"]);
  const maxAttempts = input.maxAttempts === undefined ? undefined : checkMaxAttempts(input.maxAttempts, "maxAttempts");
  const lockTimeMs = input.lockTime === undefined ? undefined : durationMs(parseDuration(input.lockTime, "lockTime"), "lockTime");
  const id = message.id ?? crypto.randomUUID();
  // `message` is checkMessage's own copy. Optional fields are assigned, not spread in: spreading
  // `cond && {…}` took most of this function's time, on the path of every store.
  message.id = id;
  const record: StoredMessage = { id, message: message as StoredMessage["message"], lane: laneOf(topic, callback), topic, at, dueAt: at, attempts: 0, seq: (lastSeq = Math.max(now * 1000, lastSeq + 1)) };
  if (recurrence) Object.assign(record, recurrence);
  if (missed !== undefined) record.missed = missed;
  if (callback !== undefined) record.callback = callback;
  if (maxAttempts !== undefined) record.maxAttempts = maxAttempts;
  if (lockTimeMs !== undefined) record.lockTimeMs = lockTimeMs;
  return record;
}

/** The recurrence of a recurring record, or undefined for a one-shot one. */
export function recurrenceOf(record: StoredMessage): Recurrence | undefined {
  if (record.cron === undefined && record.interval === undefined) return undefined;
  const { cron, interval, start, tz, end } = record;
  return { cron, interval, start: start ?? record.at, tz, end };
}

/** False when `at + interval` leaves the range a Date can hold, so no ack could ever move the schedule on. */
function secondOccurrenceFits(at: number, interval: string, tz: string | undefined): boolean {
  try {
    addDuration(at, interval, 1, tz);
    return true;
  } catch {
    return false;
  }
}

/** The schedule fields both views show, in this order (assigned, not spread: see recordOf). */
function scheduleFields(record: StoredMessage): ScheduleView {
  const view = { id: record.id, at: formatTime(record.at) } as ScheduleView;
  if (record.interval !== undefined) view.interval = record.interval;
  if (record.cron !== undefined) view.cron = record.cron;
  if (record.interval !== undefined || record.cron !== undefined) {
    view.tz = record.tz ?? "UTC";
    view.missed = record.missed ?? "once";
  }
  if (record.end !== undefined) view.end = formatTime(record.end);
  view.topic = record.topic;
  if (record.callback !== undefined) view.callback = record.callback;
  return view;
}

/** What `store`/`POST /messages` answers for a stored record. */
export function scheduledView(record: StoredMessage, replaced: boolean): Scheduled {
  const view = scheduleFields(record) as Scheduled;
  view.replaced = replaced;
  return view;
}

/** What `get`/`GET /messages/:id` shows of a record at time `now`. */
export function messageView(record: StoredMessage, now: number, last?: LastDelivery): MessageView {
  const { id, ...schedule } = scheduleFields(record);
  const locked = record.lockedUntil !== undefined && record.lockedUntil > now;
  const failure = record.lastFailure;
  const recurrence = recurrenceOf(record);
  return {
    id,
    message: record.message,
    ...schedule,
    ...(recurrence && { upcoming: occurrences(recurrence, Math.max(now, record.at), 3).map(formatTime) }),
    attempts: record.attempts,
    state: record.deadAt !== undefined ? "dead" : locked ? "locked" : "pending",
    locked,
    ...(record.lastError !== undefined && { lastError: record.lastError }),
    ...(record.maxAttempts !== undefined && { maxAttempts: record.maxAttempts }),
    ...(record.lockTimeMs !== undefined && { lockTime: parseDuration(record.lockTimeMs, "lockTime") }),
    ...(record.deadAt !== undefined && { failedAt: formatTime(record.deadAt) }),
    ...(record.failures !== undefined && { failures: record.failures }),
    ...(failure !== undefined && {
      lastFailure: {
        at: formatTime(failure.at),
        failedAt: formatTime(failure.failedAt),
        attempts: failure.attempts,
        ...(failure.lastError !== undefined && { lastError: failure.lastError }),
      },
    }),
    ...(locked && record.lockedBy !== undefined && { lockedBy: record.lockedBy }),
    ...(locked && { lockedUntil: formatTime(record.lockedUntil!) }),
    ...(last && {
      lastDelivery: { at: formatTime(last.at), emittedAt: formatTime(last.emittedAt), lateMs: last.lateMs, attempt: last.attempt, ...(last.consumer !== undefined && { consumer: last.consumer }) },
    }),
  };
}

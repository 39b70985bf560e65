import { invalid } from "../errors.ts";
import { addDuration, formatTime, parseDuration, parseTime } from "../schedule.ts";
import type { StoredMessage } from "../types.ts";
import type { MessageView, ScheduleInput, Scheduled } from "./api.ts";
import { checkMessage, checkName } from "./checks.ts";
import { laneOf } from "./lanes.ts";
import { checkMaxAttempts } from "./policies.ts";

/** Counter that orders records stored in the same millisecond by this process. */
let stored = 0;

/**
 * The record a valid input becomes, with `callback` already checked. Throws `invalid_request`
 * naming the field for anything wrong, before anything is stored.
 */
export function recordOf(input: ScheduleInput, now: number, callback: string | undefined): StoredMessage {
  const message = checkMessage(input.message);
  const topic = checkName(input.topic ?? "default", "topic");
  const at = input.at === undefined ? now : parseTime(input.at, "at");
  const interval = input.interval === undefined ? undefined : parseDuration(input.interval, "interval");
  const end = input.end === undefined || input.end === null ? undefined : parseTime(input.end, "end");
  if (end !== undefined && interval === undefined) throw invalid("end requires an interval", ["end"]);
  if (end !== undefined && end < at) throw invalid("end must not be before at", ["end"]);
  if (interval !== undefined && !secondOccurrenceFits(at, interval)) {
    throw invalid("interval is so long that the next occurrence would be past the supported time range", ["interval"]);
  }
  const maxAttempts = input.maxAttempts === undefined ? undefined : checkMaxAttempts(input.maxAttempts, "maxAttempts");
  const id = message.id ?? crypto.randomUUID();
  return {
    id,
    message: { ...message, id },
    lane: laneOf(topic, callback),
    topic,
    at,
    dueAt: at,
    attempts: 0,
    seq: now * 1000 + (stored = (stored + 1) % 1000),
    ...(interval !== undefined && { start: at, interval }),
    ...(end !== undefined && { end }),
    ...(callback !== undefined && { callback }),
    ...(maxAttempts !== undefined && { maxAttempts }),
  };
}

/** False when `at + interval` leaves the range a Date can hold, so no ack could ever move the schedule on. */
function secondOccurrenceFits(at: number, interval: string): boolean {
  try {
    addDuration(at, interval);
    return true;
  } catch {
    return false;
  }
}

/** The schedule fields both views show. */
function scheduleFields(record: StoredMessage) {
  return {
    id: record.id,
    at: formatTime(record.at),
    ...(record.interval !== undefined && { interval: record.interval }),
    ...(record.end !== undefined && { end: formatTime(record.end) }),
    topic: record.topic,
    ...(record.callback !== undefined && { callback: record.callback }),
  };
}

/** What `store`/`POST /messages` answers for a stored record. */
export function scheduledView(record: StoredMessage, replaced: boolean): Scheduled {
  return { ...scheduleFields(record), replaced };
}

/** What `get`/`GET /messages/:id` shows of a record at time `now`. */
export function messageView(record: StoredMessage, now: number): MessageView {
  const { id, ...schedule } = scheduleFields(record);
  const locked = record.lockedUntil !== undefined && record.lockedUntil > now;
  const failure = record.lastFailure;
  return {
    id,
    message: record.message,
    ...schedule,
    attempts: record.attempts,
    state: record.deadAt !== undefined ? "dead" : locked ? "locked" : "pending",
    locked,
    ...(record.lastError !== undefined && { lastError: record.lastError }),
    ...(record.maxAttempts !== undefined && { maxAttempts: record.maxAttempts }),
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
  };
}

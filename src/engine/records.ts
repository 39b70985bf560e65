import { invalid } from "../errors.ts";
import { addDuration, formatTime, parseDuration, parseTime } from "../schedule.ts";
import type { StoredMessage } from "../types.ts";
import type { MessageView, ScheduleInput, Scheduled } from "./api.ts";
import { checkMessage, checkName } from "./checks.ts";
import { laneOf } from "./lanes.ts";

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
  const id = message.id ?? crypto.randomUUID();
  return {
    id,
    message: { ...message, id },
    lane: laneOf(topic, callback),
    topic,
    at,
    dueAt: at,
    attempts: 0,
    ...(interval !== undefined && { start: at, interval }),
    ...(end !== undefined && { end }),
    ...(callback !== undefined && { callback }),
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
  return {
    id,
    message: record.message,
    ...schedule,
    attempts: record.attempts,
    locked,
    ...(record.lastError !== undefined && { lastError: record.lastError }),
    ...(locked && record.lockedBy !== undefined && { lockedBy: record.lockedBy }),
    ...(locked && { lockedUntil: formatTime(record.lockedUntil!) }),
  };
}

import type { Logger } from "../log.ts";
import { occurrenceAfterAck } from "../recurrence.ts";
import { delayMs, formatTime } from "../schedule.ts";
import type { SettleAction, StoredMessage } from "../types.ts";
import type { NackOptions } from "./api.ts";
import type { Clock } from "./clock.ts";
import { deadLaneOf } from "./lanes.ts";
import { backoffDelay, type EffectivePolicy } from "./policies.ts";
import { recurrenceOf } from "./records.ts";

/**
 * The delivery rules as settle actions: what an ack, a nack, or an occurrence that failed for
 * good does to a record. Pure but for the clock and the log lines.
 */
export function settleActions(clock: Clock, log: Logger) {
  /** Where a recurring message goes after its current occurrence (its `missed` policy applied): the next one, or nowhere. */
  const nextOf = (record: StoredMessage): number | undefined => {
    const recurrence = recurrenceOf(record);
    if (!recurrence) return undefined;
    const next = occurrenceAfterAck(recurrence, record.at, clock.now(), record.missed);
    if (next === undefined) {
      // Past the last time a Date (or croner: the year 9999) can hold: the schedule has run out, like one past its end.
      log("warn", `recurring message "${record.id}" has no occurrence after ${formatTime(record.at)} within the supported time range; it is removed`);
      return undefined;
    }
    return recurrence.end !== undefined && next > recurrence.end ? undefined : next;
  };

  const ackAction = (record: StoredMessage): SettleAction => {
    const next = nextOf(record);
    return next === undefined ? { kind: "delete" } : { kind: "update", dueAt: next, at: next, attempts: 0, lastError: null };
  };

  /**
   * The occurrence failed for good (attempts exhausted, or a final nack): a one-shot message goes
   * dead; a recurring one records the failure and moves on to its next occurrence.
   */
  const failAction = (record: StoredMessage, attempts: number, error: string | undefined): SettleAction => {
    const now = clock.now();
    const lastError = error ?? record.lastError;
    if (!recurrenceOf(record)) {
      log("warn", `message "${record.id}" on topic "${record.topic}" is dead after ${attempts} attempt(s)${lastError ? `: ${lastError}` : ""}`);
      return { kind: "update", lane: deadLaneOf(record.topic), deadAt: now, dueAt: now, attempts, ...(error !== undefined && { lastError: error }) };
    }
    log("warn", `occurrence ${formatTime(record.at)} of recurring message "${record.id}" failed after ${attempts} attempt(s)${lastError ? `: ${lastError}` : ""}`);
    const failure = { at: record.at, failedAt: now, attempts, ...(lastError !== undefined && { lastError }) };
    const next = nextOf(record);
    if (next === undefined) return { kind: "delete" };
    return { kind: "update", dueAt: next, at: next, attempts: 0, lastError: null, failures: (record.failures ?? 0) + 1, lastFailure: failure };
  };

  const nackAction = (record: StoredMessage, nack: NackOptions, policy: EffectivePolicy): SettleAction => {
    if (nack.final || record.attempts >= (record.maxAttempts ?? policy.maxAttempts)) return failAction(record, record.attempts, nack.error);
    const retryMs = nack.retryIn === undefined ? backoffDelay(policy, record.attempts) : delayMs(nack.retryIn, "retryIn");
    return { kind: "update", dueAt: clock.now() + retryMs, lastError: nack.error ?? null };
  };

  return { ackAction, failAction, nackAction };
}

import { expectInvalid } from "./support/errors.ts";
import { describe, expect, it } from "vitest";
import { PitstopError } from "../src/errors.ts";
import {
  catchUp,
  checkCron,
  checkZone,
  MAX_MISSED,
  occurrenceAfter,
  occurrenceAfterAck,
  occurrences,
  type Recurrence,
} from "../src/recurrence.ts";
import { addDuration, formatTime, zonedInstant } from "../src/schedule.ts";
import type { MissedPolicy } from "../src/types.ts";

const t = (iso: string) => Date.parse(iso);
const HOUR = 3_600_000;

/** The first `n` occurrences at or after `from`, as ISO strings. */
const list = (r: Recurrence, from: string, n = 3) => occurrences(r, t(from), n).map(formatTime);

/** `start + k × interval` in `tz` for k = 0…n-1, as ISO strings. */
const steps = (start: string, interval: string, tz: string, n = 3) =>
  Array.from({ length: n }, (_, k) => formatTime(addDuration(t(start), interval, k, tz)));


describe("cron expressions", () => {
  it("lists 5-field occurrences from `from` inclusive, at minute precision", () => {
    expect(list({ cron: "*/15 * * * *" }, "2026-01-01T10:00:00Z")).toEqual([
      "2026-01-01T10:00:00.000Z",
      "2026-01-01T10:15:00.000Z",
      "2026-01-01T10:30:00.000Z",
    ]);
    expect(list({ cron: "*/15 * * * *" }, "2026-01-01T10:00:00.001Z", 1)).toEqual(["2026-01-01T10:15:00.000Z"]);
    expect(occurrenceAfter({ cron: "0 9 * * *" }, t("2026-01-01T09:00:00Z"))).toBe(t("2026-01-02T09:00:00Z"));
  });

  it("takes 6 fields with seconds", () => {
    expect(list({ cron: "*/20 * * * * *" }, "2026-01-01T10:00:00.500Z")).toEqual([
      "2026-01-01T10:00:20.000Z",
      "2026-01-01T10:00:40.000Z",
      "2026-01-01T10:01:00.000Z",
    ]);
    expect(list({ cron: "* * * * * *" }, "2026-01-01T10:00:00Z", 2)).toEqual(["2026-01-01T10:00:00.000Z", "2026-01-01T10:00:01.000Z"]);
  });

  it("handles month ends and leap days", () => {
    expect(list({ cron: "0 0 L * *" }, "2026-01-15T00:00:00Z")).toEqual([
      "2026-01-31T00:00:00.000Z",
      "2026-02-28T00:00:00.000Z",
      "2026-03-31T00:00:00.000Z",
    ]);
    expect(list({ cron: "0 12 31 * *" }, "2026-01-01T00:00:00Z")).toEqual([
      "2026-01-31T12:00:00.000Z",
      "2026-03-31T12:00:00.000Z",
      "2026-05-31T12:00:00.000Z",
    ]);
    expect(list({ cron: "0 0 29 2 *" }, "2026-03-01T00:00:00Z", 2)).toEqual(["2028-02-29T00:00:00.000Z", "2032-02-29T00:00:00.000Z"]);
  });

  it("keeps to the wall clock of a zone across DST: weekdays at 09:00 in Berlin", () => {
    expect(list({ cron: "0 9 * * MON-FRI", tz: "Europe/Berlin" }, "2026-03-26T00:00:00Z", 4)).toEqual([
      "2026-03-26T08:00:00.000Z",
      "2026-03-27T08:00:00.000Z",
      "2026-03-30T07:00:00.000Z",
      "2026-03-31T07:00:00.000Z",
    ]);
  });

  it("fires a wall time in a DST gap once, at the first instant after the gap", () => {
    // Europe/Berlin jumps from 02:00 CET to 03:00 CEST on 2026-03-29 (01:00Z).
    expect(list({ cron: "30 2 * * *", tz: "Europe/Berlin" }, "2026-03-28T00:00:00Z")).toEqual([
      "2026-03-28T01:30:00.000Z",
      "2026-03-29T01:00:00.000Z",
      "2026-03-30T00:30:00.000Z",
    ]);
    // America/New_York jumps from 02:00 EST to 03:00 EDT on 2026-03-08 (07:00Z).
    expect(list({ cron: "30 2 * * *", tz: "America/New_York" }, "2026-03-07T00:00:00Z")).toEqual([
      "2026-03-07T07:30:00.000Z",
      "2026-03-08T07:00:00.000Z",
      "2026-03-09T06:30:00.000Z",
    ]);
  });

  it("fires a wall time that occurs twice once, at its first instance", () => {
    // Europe/Berlin falls back from 03:00 CEST to 02:00 CET on 2026-10-25 (01:00Z).
    expect(list({ cron: "30 2 * * *", tz: "Europe/Berlin" }, "2026-10-24T00:00:00Z")).toEqual([
      "2026-10-24T00:30:00.000Z",
      "2026-10-25T00:30:00.000Z",
      "2026-10-26T01:30:00.000Z",
    ]);
    // America/New_York falls back from 02:00 EDT to 01:00 EST on 2026-11-01 (06:00Z); a list counts as named times.
    expect(list({ cron: "30 1,13 * * *", tz: "America/New_York" }, "2026-11-01T00:00:00Z")).toEqual([
      "2026-11-01T05:30:00.000Z",
      "2026-11-01T18:30:00.000Z",
      "2026-11-02T06:30:00.000Z",
    ]);
  });

  it("runs expressions with `*` or a step in the time fields by elapsed time through DST", () => {
    // Every 30 minutes: the hour that does not exist is skipped, the repeated hour runs twice.
    expect(list({ cron: "*/30 * * * *", tz: "Europe/Berlin" }, "2026-03-29T00:30:00Z")).toEqual([
      "2026-03-29T00:30:00.000Z",
      "2026-03-29T01:00:00.000Z",
      "2026-03-29T01:30:00.000Z",
    ]);
    expect(list({ cron: "0 * * * *", tz: "Europe/Berlin" }, "2026-10-24T23:30:00Z", 4)).toEqual([
      "2026-10-25T00:00:00.000Z",
      "2026-10-25T01:00:00.000Z",
      "2026-10-25T02:00:00.000Z",
      "2026-10-25T03:00:00.000Z",
    ]);
  });

  it("follows zones with 30- and 45-minute offsets", () => {
    // Asia/Kathmandu is UTC+05:45 all year.
    expect(list({ cron: "0 9 * * *", tz: "Asia/Kathmandu" }, "2026-06-01T00:00:00Z", 2)).toEqual([
      "2026-06-01T03:15:00.000Z",
      "2026-06-02T03:15:00.000Z",
    ]);
    // Australia/Lord_Howe moves 30 minutes: 02:00 (+10:30) becomes 02:30 (+11) on 2026-10-04.
    expect(list({ cron: "15 2 * * *", tz: "Australia/Lord_Howe" }, "2026-10-02T00:00:00Z")).toEqual([
      "2026-10-02T15:45:00.000Z",
      "2026-10-03T15:30:00.000Z",
      "2026-10-04T15:15:00.000Z",
    ]);
    // … and 02:00 (+11) back to 01:30 (+10:30) on 2026-04-05: 01:45 occurs twice and fires once.
    expect(list({ cron: "45 1 * * *", tz: "Australia/Lord_Howe" }, "2026-04-03T00:00:00Z")).toEqual([
      "2026-04-03T14:45:00.000Z",
      "2026-04-04T14:45:00.000Z",
      "2026-04-05T15:15:00.000Z",
    ]);
  });

  it("includes an occurrence that falls exactly on end, and nothing after it", () => {
    const r = { cron: "0 * * * *", end: t("2026-01-01T12:00:00Z") };
    expect(list(r, "2026-01-01T10:00:00Z", 10)).toEqual(["2026-01-01T10:00:00.000Z", "2026-01-01T11:00:00.000Z", "2026-01-01T12:00:00.000Z"]);
    expect(list({ ...r, end: t("2026-01-01T11:59:59.999Z") }, "2026-01-01T10:00:00Z", 10)).toHaveLength(2);
  });

  it("has no occurrence for an impossible date", () => {
    expect(occurrenceAfter({ cron: "0 0 30 2 *" }, t("2026-01-01T00:00:00Z"))).toBeUndefined();
  });

  it("refuses bad expressions, naming the field", () => {
    for (const bad of ["* * *", "61 * * * *", "0 0 * * * * *", "", "every day", "0 9 * * FOO"]) {
      expectInvalid(() => checkCron(bad), /^cron must be a cron expression of 5 fields, or 6 with seconds \(.+\)$/, "cron");
    }
    expectInvalid(() => checkCron(5), /^cron must be a cron expression/, "cron");
    expectInvalid(() => checkCron("* ".repeat(200)), /at most 256 characters/, "cron");
    expect(checkCron("0 9 * * MON-FRI", "Europe/Berlin")).toBe("0 9 * * MON-FRI");
    expect(checkCron("@daily")).toBe("@daily");
  });
});

describe("time zones", () => {
  it("accepts IANA names the runtime knows and refuses anything else", () => {
    for (const zone of ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "Asia/Kathmandu"]) {
      expect(checkZone(zone)).toBe(zone);
    }
    for (const bad of ["Mars/Olympus", "", "+02:00", "Europe/", "Europe//Berlin", 7, null, "x".repeat(65)]) {
      expectInvalid(() => checkZone(bad), /^tz must be an IANA time zone name/, "tz");
    }
  });

  it("resolves wall times: a gap to its end, an overlap to its first instance", () => {
    expect(formatTime(zonedInstant(t("2026-03-29T02:30:00Z"), "Europe/Berlin"))).toBe("2026-03-29T01:00:00.000Z");
    expect(formatTime(zonedInstant(t("2026-10-25T02:30:00Z"), "Europe/Berlin"))).toBe("2026-10-25T00:30:00.000Z");
    expect(formatTime(zonedInstant(t("2026-07-01T09:00:00Z"), "Europe/Berlin"))).toBe("2026-07-01T07:00:00.000Z");
    expect(formatTime(zonedInstant(t("2026-10-04T02:10:00Z"), "Australia/Lord_Howe"))).toBe("2026-10-03T15:30:00.000Z");
    expect(formatTime(zonedInstant(t("2026-04-05T01:45:00Z"), "Australia/Lord_Howe"))).toBe("2026-04-04T14:45:00.000Z");
  });
});

describe("intervals in a zone", () => {
  it("steps days and weeks on the wall clock, so 09:00 stays 09:00 across DST", () => {
    expect(steps("2026-03-28T08:00:00Z", "P1D", "Europe/Berlin")).toEqual([
      "2026-03-28T08:00:00.000Z",
      "2026-03-29T07:00:00.000Z",
      "2026-03-30T07:00:00.000Z",
    ]);
    expect(steps("2026-10-24T07:00:00Z", "P1W", "Europe/Berlin")).toEqual([
      "2026-10-24T07:00:00.000Z",
      "2026-10-31T08:00:00.000Z",
      "2026-11-07T08:00:00.000Z",
    ]);
    // Without a zone (or in UTC) a day is 24 hours, as before.
    expect(formatTime(addDuration(t("2026-03-28T08:00:00Z"), "P1D"))).toBe("2026-03-29T08:00:00.000Z");
    expect(steps("2026-03-28T08:00:00Z", "P1D", "UTC", 2)[1]).toBe("2026-03-29T08:00:00.000Z");
  });

  it("applies the DST rules: a gap to the first instant after it, an overlap to its first instance, and back the next day", () => {
    expect(steps("2026-03-28T01:30:00Z", "P1D", "Europe/Berlin")).toEqual([
      "2026-03-28T01:30:00.000Z",
      "2026-03-29T01:00:00.000Z",
      "2026-03-30T00:30:00.000Z",
    ]);
    expect(steps("2026-10-24T00:30:00Z", "P1D", "Europe/Berlin")).toEqual([
      "2026-10-24T00:30:00.000Z",
      "2026-10-25T00:30:00.000Z",
      "2026-10-26T01:30:00.000Z",
    ]);
    expect(steps("2026-10-02T15:45:00Z", "P1D", "Australia/Lord_Howe")).toEqual([
      "2026-10-02T15:45:00.000Z",
      "2026-10-03T15:30:00.000Z",
      "2026-10-04T15:15:00.000Z",
    ]);
  });

  it("keeps fixed parts absolute: PT1H is an hour of elapsed time, and P1DT1H adds it after the wall-clock day", () => {
    expect(steps("2026-10-24T23:00:00Z", "PT1H", "Europe/Berlin", 4)).toEqual([
      "2026-10-24T23:00:00.000Z",
      "2026-10-25T00:00:00.000Z",
      "2026-10-25T01:00:00.000Z",
      "2026-10-25T02:00:00.000Z",
    ]);
    expect(steps("2026-03-28T08:00:00Z", "P1DT1H", "Europe/Berlin", 2)[1]).toBe("2026-03-29T08:00:00.000Z");
  });

  it("clamps months to their end on the zone's calendar", () => {
    // 09:00 in New York on Jan 31 is 14:00Z; after the March DST change it is 13:00Z.
    expect(steps("2026-01-31T14:00:00Z", "P1M", "America/New_York", 4)).toEqual([
      "2026-01-31T14:00:00.000Z",
      "2026-02-28T14:00:00.000Z",
      "2026-03-31T13:00:00.000Z",
      "2026-04-30T13:00:00.000Z",
    ]);
    // 00:30 on Jan 31 in Kathmandu is still Jan 30 in UTC: the zone's calendar decides (leap day included).
    expect(steps("2028-01-30T18:45:00Z", "P1M", "Asia/Kathmandu", 2)[1]).toBe("2028-02-28T18:45:00.000Z");
    expect(formatTime(addDuration(t("2028-01-30T18:45:00Z"), "P1M"))).toBe("2028-02-29T18:45:00.000Z");
    expect(steps("2028-02-28T19:00:00Z", "P1Y", "Asia/Kathmandu", 2)[1]).toBe("2029-02-27T19:00:00.000Z");
  });

  it("finds the next occurrence of a zoned interval from far away", () => {
    const r = { interval: "P1D", start: t("2020-01-01T08:00:00Z"), tz: "Europe/Berlin" };
    expect(formatTime(occurrenceAfter(r, t("2026-07-01T12:00:00Z"))!)).toBe("2026-07-02T07:00:00.000Z");
    expect(formatTime(occurrenceAfter(r, t("2026-12-01T12:00:00Z"))!)).toBe("2026-12-02T08:00:00.000Z");
  });
});

/**
 * Claims and acks a schedule at `now` (nothing takes time) until its next occurrence is in the
 * future: the occurrences delivered, and where the schedule ends up.
 */
function outage(r: Recurrence, at: number, now: number, missed: MissedPolicy) {
  const delivered: number[] = [];
  let next: number | undefined = at;
  while (next !== undefined && next <= now) {
    const move = catchUp(r, next, now, missed);
    if (move) {
      next = move.next;
      continue;
    }
    delivered.push(next);
    next = occurrenceAfterAck(r, next, now, missed);
    if (next !== undefined && r.end !== undefined && next > r.end) next = undefined;
  }
  return { delivered, next };
}

describe("missed occurrences", () => {
  const T0 = t("2026-01-05T00:00:00Z");
  const now = T0 + 72 * HOUR + 30 * 60_000;
  const hourly: Recurrence[] = [{ cron: "0 * * * *" }, { interval: "PT1H", start: T0 }, { cron: "0 * * * *", tz: "Asia/Kathmandu" }];

  it.each(hourly)("after 3 days down on an hourly schedule (%o): once, skip, all", (r) => {
    const first = r.tz ? T0 + 15 * 60_000 : T0;
    const once = outage(r, first, now, "once");
    expect(once.delivered).toEqual([first]);
    expect(once.next).toBe(first + 73 * HOUR);
    const skip = outage(r, first, now, "skip");
    expect(skip.delivered).toEqual([]);
    expect(skip.next).toBe(first + 73 * HOUR);
    const all = outage(r, first, now, "all");
    expect(all.delivered).toHaveLength(73);
    expect(all.delivered).toEqual(Array.from({ length: 73 }, (_, k) => first + k * HOUR));
    expect(all.next).toBe(first + 73 * HOUR);
  });

  it("delivers an occurrence that is late but not yet followed by another under every policy", () => {
    for (const missed of ["once", "skip", "all"] as const) {
      expect(catchUp({ cron: "0 * * * *" }, T0, T0 + 59 * 60_000, missed)).toBeUndefined();
    }
  });

  it("skip ends a schedule whose next future occurrence is past end; all stops at end", () => {
    const r = { cron: "0 * * * *", end: T0 + 10 * HOUR };
    expect(catchUp(r, T0, now, "skip")).toEqual({ next: undefined });
    const all = outage(r, T0, now, "all");
    expect(all.delivered).toHaveLength(11);
    expect(all.next).toBeUndefined();
  });

  it.each([
    ["an interval", { interval: "PT1H", start: T0 }],
    ["a cron", { cron: "0 * * * *" }],
  ])("all delivers only the newest 1,000 after a longer outage (%s)", (_, r: Recurrence) => {
    const later = T0 + 2500 * HOUR;
    const all = outage(r, T0, later, "all");
    expect(all.delivered).toHaveLength(MAX_MISSED);
    expect(all.delivered[0]).toBe(T0 + 1501 * HOUR);
    expect(all.delivered.at(-1)).toBe(later);
  });

  it("all delivers at most 1,000 of a 6-field cron every second after an hour down", () => {
    const all = outage({ cron: "* * * * * *" }, T0, T0 + HOUR, "all");
    expect(all.delivered).toHaveLength(MAX_MISSED);
    expect(all.delivered[0]).toBe(T0 + HOUR - 999_000);
  });

  it("with once and skip, an ack moves to the first occurrence after now; with all, to the one after the acked", () => {
    const r = { cron: "*/5 * * * *" };
    expect(occurrenceAfterAck(r, T0, T0 + 17 * 60_000)).toBe(T0 + 20 * 60_000);
    expect(occurrenceAfterAck(r, T0, T0 + 17 * 60_000, "skip")).toBe(T0 + 20 * 60_000);
    expect(occurrenceAfterAck(r, T0, T0 + 17 * 60_000, "all")).toBe(T0 + 5 * 60_000);
  });
});
